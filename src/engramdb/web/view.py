"""What every page handler gets (a :class:`View`: the request, the runtime, the signed-in caller) and the
helpers it uses: reading a query string or form into the API's own models, rendering a template, paging.

A handler is ``async def handler(view) -> Response``, registered on a :class:`Pages` table with the path
and methods it answers; ``engramdb.web.app`` wraps each one with sign-in, CSRF and error handling.
"""

from __future__ import annotations

import json
import types
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel
from starlette.datastructures import FormData, ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime

M = TypeVar("M", bound=BaseModel)
Handler = Callable[["View"], Awaitable[Response]]

# Query parameters a page reads for itself (never passed to a service's filter model).
NOTICE = "notice"
NOTICES = {
    "updated": "Saved. The old values are in the history below.",
    "unchanged": "Nothing changed.",
    "state": "The state was changed.",
    "deleted": "Deleted (restorable: set it active again).",
    "retried": "The job was queued again as a new job.",
    "replayed": "The delivery was queued again.",
    "revoked": "The key was revoked: it stops working at once.",
    "canceled": "The task was canceled.",
    "granted": "The grant applies at once.",
    "grant_revoked": "The grant was revoked: it stops applying at once.",
    "policy_created": "The policy was created: the next sweep runs it if it is enabled.",
    "policy_deleted": "The policy was deleted (the reports of its runs stay).",
    "dry_run": "Dry run done: its report is the first of the recent runs. Nothing was changed.",
    "hold_placed": "The hold was placed: retention deletes nothing it covers.",
    "hold_released": "The hold was released (it stays on record).",
}


@dataclass(frozen=True)
class Route:
    path: str
    handler: Handler
    methods: tuple[str, ...]
    name: str


class Pages:
    """The routes of one group of pages, declared next to their handlers."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self._add(path, ("GET",))

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self._add(path, ("POST",))

    def _add(self, path: str, methods: tuple[str, ...]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(path, handler, methods, handler.__name__))
            return handler

        return register


def environment() -> Environment:
    """Templates from the package; every value is HTML-escaped unless a template says otherwise (none does)."""
    env = Environment(
        loader=PackageLoader("engramdb.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["short"] = lambda value: str(value)[:8] if value is not None else ""
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)
    env.filters["pct"] = lambda value: f"{100 * float(value):.0f}%"
    return env


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class View:
    request: Request
    rt: Runtime
    caller: Caller
    csrf: str
    env: Environment
    form: FormData | None = None
    headers: dict[str, str] = field(default_factory=dict)

    # What the key may do decides what the pages show (Caller.require has the rules).
    @property
    def can_write(self) -> bool:
        return bool(self.caller.scopes & {"write", "admin"})

    @property
    def is_admin(self) -> bool:
        return "admin" in self.caller.scopes

    def path_id(self, name: str) -> uuid.UUID:
        value: uuid.UUID = self.request.path_params[name]
        return value

    def query(self, model: type[M], *, own: tuple[str, ...] = ()) -> M:
        """The query string as ``model`` (an API filter model: unknown parameters are refused by name), less
        the page's own parameters ``own`` and the notice."""
        return parse(model, self.request.query_params, drop=(NOTICE, *own))

    def own(self, name: str) -> str | None:
        """A parameter the page reads itself (not part of the model)."""
        value = self.request.query_params.get(name)
        return value or None

    def field(self, name: str) -> str:
        assert self.form is not None, "only a POST handler has a form"
        value = self.form.get(name)
        return value if isinstance(value, str) else ""

    def next_href(self, cursor: str | None) -> str | None:
        """This page's address with ``cursor`` for the next page (None at the end)."""
        if cursor is None:
            return None
        params = [(k, v) for k, v in self.request.query_params.multi_items() if k not in ("cursor", NOTICE)]
        return f"{self.request.url.path}?{urlencode([*params, ('cursor', cursor)])}"

    def render(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        notice = NOTICES.get(self.request.query_params.get(NOTICE, ""))
        html = self.env.get_template(template).render(
            view=self, caller=self.caller, csrf=self.csrf, notice=notice, path=self.request.url.path, **context
        )
        return HTMLResponse(html, status_code=status, headers=self.headers)

    def redirect(self, path: str, *, notice: str | None = None) -> RedirectResponse:
        """After a form: 303 to the page that shows the result (so a reload does not post again)."""
        if notice is not None:
            path = f"{path}{'&' if '?' in path else '?'}{urlencode({NOTICE: notice})}"
        return RedirectResponse(path, status_code=303)


def parse(model: type[M], params: ImmutableMultiDict[str, Any] | Mapping[str, Any], *, drop: tuple[str, ...] = ()) -> M:
    """Query-string or form values as ``model``: a list field takes every value of its name, a blank value
    is left out (an empty form field means "no filter"), anything the model does not know is refused."""
    data: dict[str, Any] = {}
    multi = params if isinstance(params, ImmutableMultiDict) else ImmutableMultiDict(params)
    for name in dict.fromkeys(multi.keys()):
        if name in drop:
            continue
        values = [v for v in multi.getlist(name) if not (isinstance(v, str) and not v.strip())]
        if not values:
            continue
        info = model.model_fields.get(name)
        data[name] = values if info is not None and _is_list(info.annotation) else values[-1]
    return model.model_validate(data)


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is list:
        return True
    if origin is Annotated:
        return _is_list(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_is_list(arg) for arg in get_args(annotation) if arg is not type(None))
    return False


def split_list(text: str) -> list[str]:
    """A form's comma-separated list ("travel, food") as its items, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]
