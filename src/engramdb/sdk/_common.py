"""What the async client and its generated sync twin share: no I/O here, so nothing to write twice."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from engramdb._version import __version__

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

DEFAULT_URL = "http://127.0.0.1:8420"  # where `engramdb serve` listens by default
DEFAULT_TIMEOUT_S = 90.0  # above the server's longest wait=true (60 s), so a waited write is not cut off
DEFAULT_MAX_RETRIES = 2
USER_AGENT = f"engramdb-python/{__version__}"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MAX_BACKOFF_S = 8.0

Id = uuid.UUID | str


def operation(operation_id: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Mark a method as the SDK's call for an OpenAPI operation (a test checks every operation has one)."""

    def mark(fn: Callable[P, R]) -> Callable[P, R]:
        fn.__engram_operation__ = operation_id  # type: ignore[attr-defined]
        return fn

    return mark


def resolve_url(base_url: str | None) -> str:
    return (base_url or os.environ.get("ENGRAM_URL") or DEFAULT_URL).rstrip("/")


def resolve_key(api_key: str | None) -> str | None:
    return api_key or os.environ.get("ENGRAM_API_KEY") or None


def default_headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    headers.update(extra or {})
    return headers


def body(model: type[M], given: M | Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A request body from a model instance or keyword fields, validated here before it is sent."""
    if given is not None and fields:
        raise TypeError("pass either a model or keyword fields, not both")
    value = given if isinstance(given, model) else model.model_validate(dict(given or fields))
    dumped: dict[str, Any] = value.model_dump(mode="json", exclude_unset=True)
    return dumped


def filters(model: type[M], given: M | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A list call's query parameters from its filter model (``XFilters``) or keyword filters, validated
    here before they are sent, in their wire form: what the caller set (``None`` is "not set"), tags as a
    list sent as repeated parameters, ``metadata`` as JSON text."""
    if given is not None and fields:
        raise TypeError("pass either a filter model or keyword filters, not both")
    if given is not None and not isinstance(given, model):
        raise TypeError(f"expected {model.__name__}, got {type(given).__name__}")
    value = given if given is not None else model.model_validate({k: v for k, v in fields.items() if v is not None})
    dumped: dict[str, Any] = value.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    return dumped


def _query_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list | tuple | set | frozenset):
        return [_query_value(v) for v in value]
    return value


def query(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters with ``None`` dropped and ids, dates, flags and metadata in their wire form."""
    return {k: _query_value(v) for k, v in params.items() if v is not None}


def path_id(value: Id) -> str:
    """One path segment: percent-encoded, so an external id such as ``a?b`` or ``..`` names itself and
    nothing else. A ``/`` cannot be carried by the server's routes, so it is refused here."""
    text = str(value)
    if not text or "/" in text:
        raise ValueError(f"{value!r} cannot name a resource in a URL path (it is empty or holds a '/')")
    if text in (".", ".."):
        return text.replace(".", "%2E")
    return quote(text, safe="")


def should_retry(method: str, status: int | None, *, attempt: int, max_retries: int, idempotent: bool | None) -> bool:
    """429 was refused before any work, so any call may try again; 503 and broken connections only
    when repeating the call cannot do it twice. ``status`` is None for a connection failure."""
    if attempt >= max_retries:
        return False
    safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
    if status == 429:
        return True
    return safe and status in (None, 502, 503, 504)


def backoff_s(attempt: int, response: httpx.Response | None) -> float:
    """Retry-After when the server gives one (seconds or a date), else exponential with jitter."""
    if response is not None and (after := response.headers.get("retry-after")):
        try:
            return min(max(float(after), 0.0), 60.0)
        except ValueError:
            try:
                delta = parsedate_to_datetime(after).timestamp() - datetime.now().timestamp()
                return min(max(delta, 0.0), 60.0)
            except (TypeError, ValueError):
                pass
    return float(min(MAX_BACKOFF_S, 0.5 * 2**attempt) * (0.75 + random.random() / 2))


def parse(model: type[M], response: httpx.Response) -> M:
    return model.model_validate_json(response.content)


class SSEParser:
    """Server-Sent Events from the lines of a response (no I/O: the async and sync streams share it).
    ``feed`` returns a finished event (``id``, ``event``, ``data`` parsed as JSON) at each blank line;
    comments (the server's keep-alive pings) and events without data return None."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> dict[str, Any] | None:
        if line == "":
            found = None
            if self._data:
                text = "\n".join(self._data)
                found = {"id": int(self._id) if self._id else 0, "event": self._event, "data": json.loads(text)}
            self._event, self._data = "message", []
            return found
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None
