"""What every tool shares: how a call finds its caller, how errors and results reach the model."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ValidationError

from engramdb.errors import EngramError
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy import directory

Ctx = Context[Any, Any]


@dataclass(frozen=True)
class Bound:
    """What one tool call runs as: the process's services and the caller its API key resolved to."""

    runtime: Runtime
    caller: Caller


# Each transport says how a call finds its caller: HTTP from the request it arrived on, stdio from the
# process's key. It is asked on every call, so a revoked key stops working at once.
Resolver = Callable[[Ctx], Awaitable[Bound]]


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn what a service refuses into a tool error the model can read and correct (``isError``
    results), never a protocol error: the REST API's title and detail, or the fields that failed."""
    try:
        yield
    except EngramError as exc:
        raise ToolError(describe(exc)) from exc
    except ValidationError as exc:
        raise ToolError(invalid(exc)) from exc


def describe(exc: EngramError) -> str:
    text = f"{exc.title} ({exc.status}): {exc.detail}"
    for err in exc.errors or ():
        text += f"; {err.get('location', '')}: {err.get('message', '')}"
    return text


def invalid(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "Validation failed (422): " + "; ".join(parts)


def result(model: BaseModel, text: str | None = None) -> CallToolResult:
    """The wire model as structured content, and as compact JSON (or ``text``) for the model to read."""
    body = text if text is not None else model.model_dump_json(exclude_none=True)
    return CallToolResult(
        content=[TextContent(type="text", text=body)], structured_content=model.model_dump(mode="json")
    )


def user_ref(caller: Caller, user_id: uuid.UUID | None, external_user_id: str | None) -> dict[str, Any]:
    """The user a call names; with neither given, a user-bound key's own user."""
    if user_id is None and external_user_id is None:
        user_id = caller.user_id
    return {"user_id": user_id, "external_user_id": external_user_id}


class NoSuchUser(Exception):
    """An external user id that names nobody yet: a filter on it matches nothing."""


async def user_filter(bound: Bound, user_id: uuid.UUID | None, external_user_id: str | None) -> uuid.UUID | None:
    """An Engram user id for filters that take only ids (facts, entities); creates nobody. A bound key
    needs no filter: what it may see is confined already."""
    if external_user_id is None:
        return user_id
    if user_id is not None:
        raise ToolError("Validation failed (422): give user_id or external_user_id, not both")
    found = await directory.user_id_for_filter(bound.runtime.db, bound.caller, external_user_id)
    if found is None:
        raise NoSuchUser(external_user_id)
    return found
