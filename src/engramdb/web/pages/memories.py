"""Memories: the list with its filters, and one memory with its provenance, its change history and the
forms that edit, archive or delete it (shown only to a key that may write)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from engramdb.errors import NotFound
from engramdb.schemas.conversations import Message
from engramdb.schemas.memories import (
    MemoryAccessFilters,
    MemoryFilters,
    MemoryHistoryFilters,
    MemoryStateChange,
    MemoryUpdate,
)
from engramdb.services.conversation import messages
from engramdb.services.memory import accesses, memories
from engramdb.web.view import Pages, View, split_list

pages = Pages()
SOURCES_SHOWN = 20  # source messages quoted on a memory's page (the rest are linked by id)


@pages.get("/memories")
async def memory_list(view: View) -> Response:
    filters = view.query(MemoryFilters)
    page = await memories.list_memories(view.rt.db, view.caller, filters)
    return view.render("memories.html", page=page, filters=filters, next_href=view.next_href(page.next_cursor))


@pages.get("/memories/{memory_id:uuid}")
async def memory(view: View) -> Response:
    memory_id = view.path_id("memory_id")
    db, caller = view.rt.db, view.caller
    found = await memories.get(db, caller, memory_id)
    history = await memories.history(db, caller, memory_id, view.query(MemoryHistoryFilters))
    sources: list[Message | uuid.UUID] = []
    for message_id in found.source_message_ids[:SOURCES_SHOWN]:
        try:
            sources.append(await messages.get(db, caller, message_id))
        except NotFound:  # erased since, or outside what this key sees
            sources.append(message_id)
    recent = await accesses.list_for_memory(db, caller, memory_id, MemoryAccessFilters(limit=10))
    return view.render(
        "memory.html",
        memory=found,
        history=history,
        sources=sources,
        accesses=recent.data,
        next_href=view.next_href(history.next_cursor),
    )


@pages.post("/memories/{memory_id:uuid}")
async def edit_memory(view: View) -> Response:
    """Only what the form changed goes to the service, so the history records real changes only."""
    memory_id = view.path_id("memory_id")
    current = await memories.get(view.rt.db, view.caller, memory_id)
    form: dict[str, Any] = {
        "content": view.field("content").strip(),
        "type": view.field("type"),
        "importance": view.field("importance") or current.importance,
        "categories": split_list(view.field("categories")),
        "tags": split_list(view.field("tags")),
    }
    wanted = MemoryUpdate.model_validate(form)  # a bad value is a 422 page naming the field
    changed = {name: getattr(wanted, name) for name in form if getattr(wanted, name) != getattr(current, name)}
    if not changed:
        return view.redirect(f"/ui/memories/{memory_id}", notice="unchanged")
    await memories.update_memory(view.rt, view.caller, memory_id, MemoryUpdate.model_validate(changed))
    return view.redirect(f"/ui/memories/{memory_id}", notice="updated")


@pages.post("/memories/{memory_id:uuid}/state")
async def change_state(view: View) -> Response:
    memory_id = view.path_id("memory_id")
    body = MemoryStateChange.model_validate({"state": view.field("state"), "reason": view.field("reason") or None})
    await memories.change_state(view.rt.db, view.caller, memory_id, body)
    return view.redirect(f"/ui/memories/{memory_id}", notice="deleted" if body.state == "deleted" else "state")
