"""Users (each with narrative, sessions, memories and facts), sessions, and a session as a conversation."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from engramdb.errors import NotFound
from engramdb.schemas.conversations import MessageFilters, SessionFilters
from engramdb.schemas.directory import User, UserFilters
from engramdb.schemas.graph import FactFilters
from engramdb.schemas.memories import MemoryFilters
from engramdb.services.conversation import messages, sessions
from engramdb.services.distill import narratives
from engramdb.services.graph import facts
from engramdb.services.memory import memories
from engramdb.services.tenancy import directory
from engramdb.services.tenancy.directory import USERS
from engramdb.web.view import Pages, View

pages = Pages()
SECTION = 10  # items of each kind on a user's page; the lists behind "all" page on


@pages.get("/users")
async def users(view: View) -> Response:
    if not view.is_admin and view.caller.user_id is not None:
        return view.redirect(f"/ui/users/{view.caller.user_id}")  # a user-bound key sees its own user
    page = await directory.list_items(view.rt.db, view.caller, USERS, view.query(UserFilters))
    return view.render("users.html", page=page, next_href=view.next_href(page.next_cursor))


@pages.get("/users/{user_id:uuid}")
async def user(view: View) -> Response:
    user_id = view.path_id("user_id")
    rt, caller = view.rt, view.caller
    record: User | None = await directory.get(rt.db, caller, USERS, user_id) if view.is_admin else None
    try:
        narrative = await narratives.latest(rt, caller, user_id)
    except NotFound:
        narrative = None
    found_sessions = await sessions.list_sessions(rt.db, caller, SessionFilters(user_id=user_id, limit=SECTION))
    found_memories = await memories.list_memories(rt.db, caller, MemoryFilters(user_id=user_id, limit=SECTION))
    found_facts = await facts.list_facts(rt, caller, FactFilters(user_id=user_id, limit=SECTION))
    return view.render(
        "user.html",
        user_id=user_id,
        record=record,
        narrative=narrative,
        sessions=found_sessions,
        memories=found_memories,
        facts=found_facts,
    )


@pages.get("/sessions")
async def session_list(view: View) -> Response:
    page = await sessions.list_sessions(view.rt.db, view.caller, view.query(SessionFilters))
    return view.render("sessions.html", page=page, next_href=view.next_href(page.next_cursor))


@pages.get("/sessions/{session_id:uuid}")
async def session(view: View) -> Response:
    """The conversation in time order (paged on), its rolling summary, and the memories drawn from it."""
    session_id = view.path_id("session_id")
    db, caller = view.rt.db, view.caller
    found = await sessions.get(db, caller, session_id)
    thread = await messages.list_messages(db, caller, session_id, view.query(MessageFilters))
    drawn = await memories.list_memories(db, caller, MemoryFilters(session_id=session_id, limit=SECTION))
    return view.render(
        "session.html", session=found, thread=thread, drawn=drawn, next_href=view.next_href(thread.next_cursor)
    )


@pages.get("/messages/{message_id:uuid}")
async def message(view: View) -> Response:
    """A message (a memory's source) in its conversation: the session's thread from that message on."""
    found = await messages.get(view.rt.db, view.caller, view.path_id("message_id"))
    query = urlencode({"occurred_after": found.occurred_at.isoformat()})
    return view.redirect(f"/ui/sessions/{found.session_id}?{query}#m-{found.id}")
