"""The dashboard's routes, mounted by ``engramdb.server`` at ``/ui`` (with ``/`` leading to it).

Every page goes through :meth:`Dashboard.endpoint`: the session cookie is checked and its API key
authenticated again (``keys.authenticate``, as the API does: a revoked key is signed out on its next
page), a POST must carry its form's CSRF token and come from this origin, and any error a service raises
is rendered as a page with the problem's title and detail and the status the API would answer. Each
answer carries a strict Content-Security-Policy: scripts and styles come only from ``/ui/static`` (no
inline script or style anywhere), nothing is framed, forms post only here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.routing import Route as StarletteRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from engramdb.config import Settings
from engramdb.errors import EngramError, PermissionDenied, ServiceUnavailable, Unauthenticated
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy import keys
from engramdb.web import pages
from engramdb.web.session import (
    COOKIE_PATH,
    FLASH_COOKIE,
    FLASH_TTL_S,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_TTL_S,
    SignedIn,
    Signer,
)
from engramdb.web.view import Handler, View, environment

_log = logging.getLogger("engramdb.web")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
HOME = "/ui/"


class Dashboard:
    """The dashboard over one app's runtime (``runtime`` gives it once the app's lifespan has started)."""

    def __init__(self, runtime: Callable[[], Runtime], settings: Settings) -> None:
        self._runtime = runtime
        self.settings = settings
        self.signer = Signer(settings)
        self.env: Environment = environment()

    def routes(self) -> list[BaseRoute]:
        """The routes to mount at ``/ui``."""
        found: list[BaseRoute] = [
            Mount("/static", app=_Static(StaticFiles(packages=[("engramdb.web", "static")])), name="static"),
            StarletteRoute("/sign-in", self.sign_in_form, methods=["GET"], name="sign_in_form"),
            StarletteRoute("/sign-in", self.sign_in, methods=["POST"], name="sign_in"),
            StarletteRoute("/sign-out", self.sign_out, methods=["POST"], name="sign_out"),
        ]
        for route in pages.ROUTES:
            found.append(StarletteRoute(route.path, self.endpoint(route.handler), methods=list(route.methods)))
        found.append(StarletteRoute("/{rest:path}", self.endpoint(pages.not_found), name="not_found"))
        return found

    async def home(self, request: Request) -> RedirectResponse:
        """``/``: a person who opens the server's address lands on the dashboard."""
        return RedirectResponse(HOME, status_code=307)

    def endpoint(self, handler: Handler) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            try:
                response = await self._run(request, handler)
            except EngramError as exc:
                response = self._error(request, exc.status, exc.title, exc.detail, exc.errors)
            except ValidationError as exc:
                errors = [
                    {"location": "/".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors(include_url=False)
                ]
                detail = f"{len(errors)} value{'s' if len(errors) != 1 else ''} of the request cannot be used"
                response = self._error(request, 422, "Validation failed", detail, errors)
            return _secured(response)

        return run

    async def _run(self, request: Request, handler: Handler) -> Response:
        rt = self._runtime_or_503()
        signed = self.signer.read_session(request.cookies.get(SESSION_COOKIE))
        if signed is None:
            why = "Your sign-in has ended: sign in again." if request.cookies.get(SESSION_COOKIE) else None
            return self._signed_out(request, problem=why)
        try:
            caller = await self._authenticate(request, rt, signed.key)
        except Unauthenticated as exc:  # revoked or expired since: signed out at once
            return self._signed_out(request, problem=exc.detail)
        if caller.org_id != signed.org_id:  # cannot happen with an unaltered cookie; refuse rather than guess
            return self._signed_out(request, problem="Sign in again.")
        view = View(request=request, rt=rt, caller=caller, csrf=self.signer.csrf(signed), env=self.env)
        if request.method == "POST":
            view.form = await self._checked_form(request, signed)
        return await handler(view)

    async def _checked_form(self, request: Request, signed: SignedIn) -> Any:
        _same_origin(request)
        form = await request.form()
        token = form.get("csrf")
        if not self.signer.check_csrf(signed, token if isinstance(token, str) else None):
            raise PermissionDenied("the form's CSRF token is missing or belongs to another sign-in: reload the page")
        return form

    def _runtime_or_503(self) -> Runtime:
        try:
            return self._runtime()
        except AttributeError as exc:  # before the app's lifespan has built it
            raise ServiceUnavailable("the server is still starting: reload in a moment") from exc

    async def _authenticate(self, request: Request, rt: Runtime, key: str) -> Caller:
        return await keys.authenticate(
            rt.db,
            key,
            request_id=getattr(request.state, "request_id", None),
            client_addr=request.client.host if request.client else None,
            touch_interval_s=self.settings.key_touch_interval_s,
        )

    # Sign-in and sign-out ------------------------------------------------------------------------------

    async def sign_in_form(self, request: Request) -> Response:
        signed = self.signer.read_session(request.cookies.get(SESSION_COOKIE))
        if signed is not None:
            return RedirectResponse(HOME, status_code=303)
        problem = self.signer.read_flash(request.cookies.get(FLASH_COOKIE))
        after = _local_path(request.query_params.get("next", ""))
        response = self._sign_in_page(request, status=200, problem=problem, clear=False, after=after)
        if problem is not None:
            response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return _secured(response)

    def _signed_out(self, request: Request, *, problem: str | None) -> Response:
        """A page asked without a valid sign-in: a GET goes to the sign-in form (which says why, and returns
        here after), anything else is answered 401 with the form. A session cookie is cleared."""
        if request.method not in ("GET", "HEAD"):
            return self._sign_in_page(request, status=401, problem=problem, clear=True, after="")
        here = _local_path(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        response = RedirectResponse("/ui/sign-in" + (f"?{urlencode({'next': here})}" if here else ""), 303)
        if problem is not None:
            response.set_cookie(
                FLASH_COOKIE,
                self.signer.flash(problem),
                max_age=FLASH_TTL_S,
                path=COOKIE_PATH,
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="strict",
            )
        if request.cookies.get(SESSION_COOKIE):
            response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    async def sign_in(self, request: Request) -> Response:
        try:
            _same_origin(request)
            form = await request.form()
        except PermissionDenied as exc:
            return _secured(self._error(request, 403, PermissionDenied.title, exc.detail, None))
        key = str(form.get("api_key") or "").strip()
        after = _local_path(str(form.get("next") or ""))
        token = form.get("csrf")
        if not self.signer.check_sign_in(
            request.cookies.get(SIGN_IN_COOKIE), token if isinstance(token, str) else None
        ):
            problem = "The sign-in form had expired or was sent from elsewhere: try again."
            return _secured(self._sign_in_page(request, status=403, problem=problem, clear=False, after=after))
        try:
            rt = self._runtime_or_503()
            caller = await self._authenticate(request, rt, key)
        except Unauthenticated as exc:
            return _secured(self._sign_in_page(request, status=401, problem=exc.detail, clear=False, after=after))
        except EngramError as exc:
            return _secured(self._error(request, exc.status, exc.title, exc.detail, exc.errors))
        value, signed = self.signer.session(key, caller.org_id)
        response = RedirectResponse(after or HOME, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=signed.expires_at - int(time.time()),
            path=COOKIE_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
        return _secured(response)

    async def sign_out(self, request: Request) -> Response:
        signed = self.signer.read_session(request.cookies.get(SESSION_COOKIE))
        if signed is not None:
            try:
                await self._checked_form(request, signed)
            except PermissionDenied as exc:
                return _secured(self._error(request, 403, PermissionDenied.title, exc.detail, None))
        response = RedirectResponse("/ui/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return _secured(response)

    def _sign_in_page(
        self, request: Request, *, status: int, problem: str | None, clear: bool, after: str | None
    ) -> Response:
        cookie, token = self.signer.sign_in_token()
        html = self.env.get_template("sign_in.html").render(csrf=token, problem=problem, after=after or "")
        response = HTMLResponse(html, status_code=status)
        response.set_cookie(
            SIGN_IN_COOKIE,
            cookie,
            max_age=SIGN_IN_TTL_S,
            path=COOKIE_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        if clear:
            response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    def _error(
        self, request: Request, status: int, title: str, detail: str, errors: list[dict[str, Any]] | None
    ) -> Response:
        html = self.env.get_template("error.html").render(
            status=status,
            title=title,
            detail=detail,
            errors=errors or [],
            request_id=getattr(request.state, "request_id", None),
        )
        return HTMLResponse(html, status_code=status)


def _secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _same_origin(request: Request) -> None:
    """A form must come from a page of this server: a browser names the page's origin on every POST."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's form (a browser sends it with every POST)
        return
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc != host:
        raise PermissionDenied("the form was sent from another site")


def _local_path(value: str) -> str:
    """A path to go to after sign-in, only if it is one of the dashboard's own (never another site's)."""
    if value.startswith("/ui/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value
    return ""


class _Static:
    """The package's static files, with the dashboard's headers (cached for an hour: they change only with
    a release)."""

    def __init__(self, app: StaticFiles) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"cache-control", b"public, max-age=3600"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
