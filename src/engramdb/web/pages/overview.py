"""The overview: what the organization stores, how the job queue stands, LLM token usage, recent activity."""

from __future__ import annotations

from typing import Any, get_args

from starlette.responses import Response

from engramdb.errors import NotFound
from engramdb.schemas.audit import AuditFilters
from engramdb.schemas.conversations import SessionFilters
from engramdb.schemas.jobs import JobFilters, JobStatus
from engramdb.schemas.memories import MemoryFilters
from engramdb.services.conversation import sessions
from engramdb.services.core import audit, jobs, usage
from engramdb.services.memory import memories
from engramdb.web.view import Pages, View

pages = Pages()
QUEUE_PEEK = 100  # jobs counted per status; more shows as "100+"


@pages.get("/")
async def overview(view: View) -> Response:
    caller, db = view.caller, view.rt.db
    queue: dict[str, Any] = {}
    for status in get_args(JobStatus):
        found = await jobs.list_jobs(db, caller, JobFilters(status=status, limit=QUEUE_PEEK))
        queue[status] = f"{len(found.data)}{'+' if found.next_cursor else ''}"
    failed = await jobs.list_jobs(db, caller, JobFilters(status="failed", limit=5))
    context: dict[str, Any] = {"queue": queue, "failed": failed.data, "report": None, "activity": []}
    if view.is_admin:
        context["report"] = await usage.report(db, caller, since=None, until=None)
        context["activity"] = (await audit.list_entries(db, caller, AuditFilters(limit=12))).data
    context["recent_sessions"] = (await sessions.list_sessions(db, caller, SessionFilters(limit=5))).data
    context["recent_memories"] = (await memories.list_memories(db, caller, MemoryFilters(limit=5))).data
    return view.render("overview.html", **context)


async def not_found(view: View) -> Response:
    raise NotFound(f"the dashboard has no page at {view.request.url.path}")
