"""Context assembly (POST /v1/context): summary, facts valid now, relevant memories, recent messages.

The block never exceeds the budget. Tokens are estimated as one per three UTF-8 bytes, rounded up, which
over-counts for GPT-style tokenizers on ordinary text (about four bytes a token), so the real count
stays under the budget. Each line cites the id it came from; the whole block is wrapped in
``<engram-context>`` markers, which the extractor strips, so an agent echoing it back into a
conversation does not teach Engram what it already knew.

Each section takes a share of what the sections before it left, and when its lines do not all fit it
keeps those that matter most in it and drops the rest:

- summary: one text; cut at its end (marked `` … [session:…]``) rather than dropped.
- facts (valid now): with a ``query`` the closest to it; without one the most confirmed (``weight``),
  then the most recently begun (``valid_from``, else when recorded). Shown in that order.
- memories (active, not expired): with a ``query`` the best search hits, by score; without one the most
  important, then the most recently changed. Shown in that order.
- messages: the newest (by ``occurred_at``, then ``seq``, as the session lists them), so a small budget
  keeps the last turns of the conversation, not its opening; the kept turns are shown oldest first.
- contexts (offloaded, asked for by name): with a ``query`` the best search hits among the user's (or the
  session's) contexts, else the session's newest; each line is the context's representative text and its
  id, which the agent restores it by (``GET /v1/contexts/{id}/content``).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from engramdb import ids
from engramdb.errors import PermissionDenied
from engramdb.providers.extraction import INJECTED_CLOSE, INJECTED_OPEN
from engramdb.schemas.context import Citation, ContextRequest, ContextResponse, Section
from engramdb.schemas.search import SearchRequest
from engramdb.services.conversation.sessions import fetch_visible
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.graph import facts
from engramdb.services.search import hybrid as search
from engramdb.services.tenancy.directory import find_external_user
from engramdb.storage import tables as t
from engramdb.storage.filters import unexpired

# Share of the budget still left that each section may take, in order; what one leaves, the next gets.
_SHARE: dict[Section, float] = {"summary": 0.3, "facts": 0.4, "memories": 0.6, "messages": 1.0, "contexts": 0.5}
_TITLES: dict[Section, str] = {
    "summary": "Conversation so far",
    "facts": "Known facts (valid now)",
    "memories": "Relevant memories",
    "messages": "Recent messages",
    "contexts": "Offloaded contexts (restore by id)",
}


def tokens(text: str) -> int:
    return math.ceil(len(text.encode()) / 3)


@dataclass
class _Line:
    text: str
    kind: str
    id: uuid.UUID
    order: tuple[Any, ...] = ()  # where a kept line is shown in its section (default: in the order kept)


@dataclass
class _Part:
    text: str
    citations: list[Citation]


@dataclass
class _Plan:
    lines: dict[Section, list[_Line]] = field(default_factory=dict)  # per section, what matters most first


async def assemble(rt: Runtime, caller: Caller, req: ContextRequest) -> ContextResponse:
    caller.require("read")
    block_id = ids.uuid7()
    head = f'{INJECTED_OPEN} id="{block_id}" note="memory from Engram; not part of the conversation">\n'
    tail = f"\n{INJECTED_CLOSE}"
    plan = await _gather(rt, caller, req)
    budget = req.token_budget - tokens(head) - tokens(tail)
    parts: list[_Part] = []
    truncated = False
    for section in req.sections:
        lines = plan.lines.get(section, [])
        if not lines:
            continue
        title = f"## {_TITLES[section]}\n"
        allowance = budget if section == req.sections[-1] else math.floor(budget * _SHARE[section])
        if tokens(title) >= allowance:
            truncated = True
            continue
        kept, cut = _keep(section, lines, allowance - tokens(title))
        truncated = truncated or cut
        if not kept:
            continue
        kept.sort(key=lambda line: line.order)  # stable: lines without an order stay as kept
        text = title + "\n".join(line.text for line in kept)
        parts.append(_Part(text, [Citation(kind=line.kind, id=line.id, section=section) for line in kept]))
        budget -= tokens(text + "\n\n")
    context = head + "\n\n".join(part.text for part in parts) + tail
    while tokens(context) > req.token_budget and parts:  # the estimate of the joins, made exact
        parts.pop()
        truncated = True
        context = head + "\n\n".join(part.text for part in parts) + tail
    citations = [citation for part in parts for citation in part.citations]
    return ContextResponse(
        context=context, token_budget=req.token_budget, tokens=tokens(context), citations=citations, truncated=truncated
    )


def _keep(section: Section, lines: list[_Line], room: int) -> tuple[list[_Line], bool]:
    """The first ``lines`` (what matters most first) that fit in ``room`` tokens, and whether any was left
    out. A summary too long for the room is cut at its end rather than dropped."""
    used = 0
    kept: list[_Line] = []
    for line in lines:
        cost = tokens(line.text + "\n")
        if used + cost > room:
            if section == "summary" and not kept:
                chars = (room - used) * 3 - 8
                if chars > 40:
                    cite = f" … [session:{line.id}]"
                    text = line.text.encode()[: chars - len(cite.encode())].decode(errors="ignore")
                    kept.append(_Line(text.rsplit(" ", 1)[0] + cite, line.kind, line.id))
            return kept, True
        kept.append(line)
        used += cost
    return kept, False


async def _gather(rt: Runtime, caller: Caller, req: ContextRequest) -> _Plan:
    plan = _Plan()
    sess: dict[str, Any] | None = None
    async with rt.db.read(caller.org_id) as conn:
        user_id = req.user_id
        if req.external_user_id is not None:
            user_id = await find_external_user(conn, caller, req.external_user_id)
            if user_id is None and caller.user_id is not None:
                raise PermissionDenied("this API key is bound to another user")
        if user_id is not None:
            caller.bind("user_id", user_id)
        if req.session_id is not None:
            sess = await fetch_visible(conn, caller, req.session_id)
            user_id = user_id or sess["user_id"]
        user_id = user_id or caller.user_id
        if sess is not None and sess["expires_at"] is not None and sess["expires_at"] <= datetime.now(UTC):
            sess = None  # an expired session is hidden, its summary and turns with it
        if sess is not None and sess.get("summary") and "summary" in req.sections:
            plan.lines["summary"] = [_Line(f"{sess['summary']} [session:{sess['id']}]", "summary", sess["id"])]
        if sess is not None and req.recent_messages and "messages" in req.sections:
            m = t.message
            rows = (
                await conn.execute(
                    select(m.c.id, m.c.seq, m.c.role, m.c.name, m.c.content, m.c.occurred_at)
                    .where(m.c.org_id == caller.org_id, m.c.session_id == sess["id"])
                    .order_by(m.c.occurred_at.desc(), m.c.seq.desc())
                    .limit(req.recent_messages)
                )
            ).all()
            plan.lines["messages"] = [  # newest first: the budget keeps the latest turns
                _Line(
                    f"- {r.occurred_at:%Y-%m-%d} {r.name or r.role}: {_one_line(r.content)} [message:{r.id}]",
                    "message",
                    r.id,
                    order=(r.occurred_at, r.seq),
                )
                for r in rows
                if INJECTED_OPEN not in r.content
            ]
        if "facts" in req.sections and req.max_facts and (user_id is not None or caller.user_id is not None):
            plan.lines["facts"] = await _facts(conn, rt, caller, user_id, req)
    if "memories" in req.sections and req.max_memories and (user_id is not None or sess is not None):
        plan.lines["memories"] = await _memories(rt, caller, user_id, req)
    if "contexts" in req.sections and req.max_contexts and (user_id is not None or sess is not None):
        plan.lines["contexts"] = await _contexts(rt, caller, user_id, sess, req)
    return plan


async def _facts(conn: Any, rt: Runtime, caller: Caller, user_id: uuid.UUID | None, req: ContextRequest) -> list[_Line]:
    f = t.fact
    query = select(f.c.id, f.c.statement, f.c.valid_from).where(*visibility.facts(caller), *facts.current_now())
    if user_id is not None:
        query = query.where(f.c.user_id == user_id)
    if req.query:
        (qvec,) = await rt.embedder.embed_batch([req.query], kind="query")
        query = query.order_by(f.c.embedding.cosine_distance(qvec))
    else:
        query = query.order_by(f.c.weight.desc(), func.coalesce(f.c.valid_from, f.c.recorded_at).desc())
    rows = (await conn.execute(query.limit(req.max_facts))).all()
    return [
        _Line(
            f"- {r.statement}{f' (since {r.valid_from:%Y-%m-%d})' if r.valid_from else ''} [fact:{r.id}]", "fact", r.id
        )
        for r in rows
    ]


async def _memories(rt: Runtime, caller: Caller, user_id: uuid.UUID | None, req: ContextRequest) -> list[_Line]:
    mem = t.memory
    if req.query:
        found, _ = await search.search(
            rt,
            caller,
            SearchRequest(query=req.query, user_id=user_id, types=["memories"], top_k=req.max_memories),
        )
        return [_Line(f"- {_one_line(r.content)} [memory:{r.id}]", "memory", r.id) for r in found.results]
    async with rt.db.read(caller.org_id) as conn:
        query = select(mem.c.id, mem.c.content).where(
            *visibility.memories(caller), mem.c.state == "active", unexpired(mem)
        )
        if user_id is not None:
            query = query.where(mem.c.user_id == user_id)
        rows = (
            await conn.execute(query.order_by(mem.c.importance.desc(), mem.c.updated_at.desc()).limit(req.max_memories))
        ).all()
    return [_Line(f"- {_one_line(r.content)} [memory:{r.id}]", "memory", r.id) for r in rows]


async def _contexts(
    rt: Runtime, caller: Caller, user_id: uuid.UUID | None, sess: dict[str, Any] | None, req: ContextRequest
) -> list[_Line]:
    def line(context_id: uuid.UUID, text: str) -> _Line:
        return _Line(f"- {_one_line(text)} [context:{context_id}]", "context", context_id)

    session_id = sess["id"] if sess is not None else None
    if req.query:
        found, _ = await search.search(
            rt,
            caller,
            SearchRequest(
                query=req.query,
                user_id=user_id,
                session_id=session_id if user_id is None else None,
                types=["contexts"],
                top_k=req.max_contexts,
            ),
        )
        return [line(r.id, r.content) for r in found.results]
    if session_id is None:
        return []
    oc = t.offloaded_context
    query = select(oc.c.id, oc.c.summary).where(*visibility.contexts(caller), oc.c.session_id == session_id)
    async with rt.db.tenant(caller.org_id) as conn:
        rows = (await conn.execute(query.where(unexpired(oc)).order_by(oc.c.id.desc()).limit(req.max_contexts))).all()
    return [line(r.id, r.summary) for r in rows]


def _one_line(text: str) -> str:
    return " ".join(text.split())
