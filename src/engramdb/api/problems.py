"""Every error leaves the API as RFC 9457 ``application/problem+json``; this module is the one mapper."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engramdb.errors import EngramError

PROBLEM_BASE = "urn:engramdb:problem:"
MEDIA_TYPE = "application/problem+json"
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


def _clean_errors(raw: list[Any]) -> list[dict[str, Any]]:
    cleaned = []
    for err in raw:
        loc = [str(p) for p in err.get("loc", ())]
        cleaned.append({"location": "/".join(loc), "message": str(err.get("msg", "")), "type": err.get("type")})
    return cleaned


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route takes at this path, from the OpenAPI document (Starlette names only the
    first route that matched the path, and one path often has several: GET and POST of a collection)."""
    path = request.url.path
    methods: set[str] = set()
    for template, ops in app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
            methods |= {m.upper() for m in ops}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(EngramError)
    async def _engram(request: Request, exc: EngramError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(request, exc.status, exc.slug, exc.title, exc.detail, errors=exc.errors, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
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
    async def _query_validation(request: Request, exc: ValidationError) -> JSONResponse:
        # Filters are validated as models inside the route: their fields come from the query string.
        errors = [{**e, "loc": ("query", *e.get("loc", ()))} for e in exc.errors()]
        return problem(
            request,
            422,
            "validation-failed",
            "Validation failed",
            "the query parameters do not match the schema; see errors",
            errors=_clean_errors(errors),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; this path takes {', '.join(allowed)}"
        return problem(request, exc.status_code, slug, title, detail, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            request,
            500,
            "internal-error",
            "Internal error",
            "an unexpected error occurred; it has been logged with this request_id",
        )
