"""Every error leaves the API as RFC 9457 ``application/problem+json``; this module is the one mapper.

A 503 carries ``Retry-After``: the database restarting (or a statement cut by its crash) is a reason to
retry, never a 500."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Scope, Send

from engramdb.errors import EngramError, RateLimited, ServiceUnavailable
from engramdb.storage.database import DRIVER_ERRORS, unavailable

PROBLEM_BASE = "urn:engramdb:problem:"
MEDIA_TYPE = "application/problem+json"
# Seconds a client waits before retrying a 503: an embedded server restarted after a crash answers again
# within a few seconds, and an external one is reconnected to on the next request.
RETRY_AFTER_S = 2
_log = logging.getLogger("engramdb.api")

_HTTP_SLUGS = {
    400: ("invalid-request", "Invalid request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("permission-denied", "Permission denied"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
}


def problem(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def rate_limit_headers(limit: int, remaining: int, reset_s: int) -> dict[str, str]:
    """The rate-limit fields of every answer a limit applies to (draft-ietf-httpapi-ratelimit-headers:
    ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` in seconds)."""
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(reset_s),
    }


async def send_problem(scope: Scope, send: Send, error: EngramError, *, headers: dict[str, str] | None = None) -> None:
    """``error`` as problem+json, from a pure ASGI middleware (outside the app's exception handlers)."""
    body = {
        "type": PROBLEM_BASE + error.slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": scope.get("path"),
        "request_id": scope.get("state", {}).get("request_id"),
    }
    payload = json.dumps(body).encode()
    raw = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _clean_errors(raw: list[Any]) -> list[dict[str, Any]]:
    cleaned = []
    for err in raw:
        loc = [str(p) for p in err.get("loc", ())]
        cleaned.append({"location": "/".join(loc), "message": str(err.get("msg", "")), "type": err.get("type")})
    return cleaned


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route takes at this path, from the OpenAPI document (Starlette names only the
    first route that matched the path, and one path often has several: GET and POST of a collection), or
    for a path the document leaves out (the dashboard's), from the routes that match it."""
    path = request.url.path
    paths = app.openapi()["paths"]
    methods: set[str] = set()
    if path in paths:  # named literally (/v1/tasks/claim): a template it also fits (/v1/tasks/{task_id}) is not it
        methods = {m.upper() for m in paths[path]}
    else:
        for template, ops in paths.items():
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
                methods |= {m.upper() for m in ops}
    # A path outside the API's document (the dashboard's pages): the routes themselves. Not for the API's
    # own paths: this FastAPI keeps an included router as one private object, not as its routes.
    if not methods:
        routes = list(_routes_at(app.routes, path))
        for route in [r for r, rest in routes if r.path == rest] or [r for r, _ in routes]:
            methods |= set(route.methods or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _routes_at(routes: list[BaseRoute], path: str) -> Iterator[tuple[Route, str]]:
    """The routes (inside mounts too) that take some method at ``path``, each with the part of the path it
    matched."""
    for route in routes:
        if isinstance(route, Mount) and (path == route.path or path.startswith(route.path + "/")):
            yield from _routes_at(route.routes, path[len(route.path) :] or "/")
        elif isinstance(route, Route) and route.methods and route.path_regex.match(path):
            yield route, path


def _method_not_allowed(app: FastAPI, request: Request, headers: dict[str, str] | None = None) -> JSONResponse:
    allowed = _allowed_methods(app, request)
    detail = f"{request.method} is not allowed here; this path takes {', '.join(allowed)}"
    slug, title = _HTTP_SLUGS[405]
    return problem(request, 405, slug, title, detail, headers={**(headers or {}), "Allow": ", ".join(allowed)})


def install(app: FastAPI) -> None:
    @app.exception_handler(EngramError)
    async def _engram(request: Request, exc: EngramError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status in (429, 503):
            headers = {"Retry-After": str(getattr(exc, "retry_after_s", RETRY_AFTER_S))}
        if isinstance(exc, RateLimited):
            headers = {**(headers or {}), **rate_limit_headers(exc.limit, 0, exc.reset_s)}
        return problem(request, exc.status, exc.slug, exc.title, exc.detail, errors=exc.errors, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if request.url.path in app.openapi()["paths"] and any(e.get("loc", ())[:1] == ("path",) for e in errors):
            # PATCH /v1/tasks/claim reached PATCH /v1/tasks/{task_id} with "claim" for an id: the path is a
            # route's own, and that route does not take this method.
            if request.method not in _allowed_methods(app, request):
                return _method_not_allowed(app, request)
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(
                request,
                400,
                "malformed-json",
                "Malformed JSON",
                "the request body is not valid JSON",
                errors=_clean_errors(errors),
            )
        return problem(
            request,
            422,
            "validation-failed",
            "Validation failed",
            "the request does not match the schema; see errors",
            errors=_clean_errors(errors),
        )

    @app.exception_handler(ValidationError)
    async def _model_validation(request: Request, exc: ValidationError) -> JSONResponse:
        # A model validated inside a route (an upload's form fields, read one by one): its fields are the
        # body's. Query strings never come here: list filters are query models FastAPI validates.
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        return problem(
            request,
            422,
            "validation-failed",
            "Validation failed",
            "the request does not match the schema; see errors",
            errors=_clean_errors(errors),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            return _method_not_allowed(app, request, headers)
        return problem(request, exc.status_code, slug, title, detail, headers=headers or None)

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        detail = unavailable(exc)
        if detail is not None:  # a statement cut by a database crash or restart, outside Database's guard
            _log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return problem(
                request,
                ServiceUnavailable.status,
                ServiceUnavailable.slug,
                ServiceUnavailable.title,
                detail,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            request,
            500,
            "internal-error",
            "Internal error",
            "an unexpected error occurred; it has been logged with this request_id",
        )

    for driver_error in DRIVER_ERRORS:  # answered here, not re-raised to the server as a crash
        app.add_exception_handler(driver_error, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
