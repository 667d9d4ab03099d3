"""Decay: a memory's effective importance fades with the time since it was last used.

``effective = importance × 2^(−idle / half-life)``, where *idle* is the time since the memory was last
read by a search or context (``last_accessed_at``), or confirmed (extraction met it again, or it was
edited: ``updated_at``), whichever is later, and the half-life is its type's in its organization: the
organization's own (``PUT /v1/decay``, table ``decay_policy``) or else the server's
(``ENGRAM_DECAY_HALF_LIFE_DAYS``). A type whose half-life is 0 does not decay: by default facts and
procedures, which stay true until something replaces them (a fact that no longer holds is closed, not
faded). Search uses the effective importance where ``weights.importance`` counts; ``explain`` shows both.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.config import Settings
from engramdb.schemas.decay import Decay, DecayUpdate, TypeDecay
from engramdb.schemas.memories import MemoryType
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database

DAY_S = 86_400.0


def last_used(row: Mapping[str, Any]) -> datetime | None:
    """When the memory was last read or confirmed (else created)."""
    times = [row.get(k) for k in ("last_accessed_at", "updated_at", "created_at")]
    known = [when for when in times if when is not None]
    return max(known) if known else None


def factor(row: Mapping[str, Any], now: datetime, half_lives: Mapping[str, float]) -> float:
    """``2^(−idle / half-life)`` for a memory row (``memory_type`` and the times above); 1.0 when its
    type does not decay or its times are unknown."""
    half_life = half_lives.get(str(row.get("memory_type")), 0.0)
    when = last_used(row)
    if half_life <= 0 or when is None:
        return 1.0
    idle_days = max(0.0, (now - when).total_seconds() / DAY_S)
    return math.exp(-math.log(2) * idle_days / half_life)


def effective(row: Mapping[str, Any], now: datetime, half_lives: Mapping[str, float]) -> float:
    return float(row["importance"]) * factor(row, now, half_lives)


def defaults(settings: Settings) -> dict[str, float]:
    """The server's half-life of every memory type (0 where it names none)."""
    return {kind: float(settings.decay_half_life_days.get(kind, 0.0)) for kind in get_args(MemoryType)}


async def half_lives(conn: AsyncConnection, org_id: uuid.UUID, settings: Settings) -> dict[str, float]:
    """The half-lives in force in an organization: its own values over the server's (one indexed read)."""
    p = t.decay_policy
    rows = (await conn.execute(select(p.c.memory_type, p.c.half_life_days).where(p.c.org_id == org_id))).all()
    return {**defaults(settings), **{kind: float(days) for kind, days in rows}}


async def get(db: Database, caller: Caller, settings: Settings) -> Decay:
    """Every type's half-life in force in the caller's organization, with the server's and its own."""
    caller.require("read")
    p = t.decay_policy
    async with db.tenant(caller.org_id) as conn:
        rows = (await conn.execute(select(p).where(p.c.org_id == caller.org_id))).mappings().all()
    own = {row["memory_type"]: float(row["half_life_days"]) for row in rows}
    return Decay(
        data=[
            TypeDecay(
                memory_type=kind,
                half_life_days=own.get(kind, default),
                default_half_life_days=default,
                override_half_life_days=own.get(kind),
            )
            for kind, default in defaults(settings).items()
        ]
    )


async def replace(db: Database, caller: Caller, body: DecayUpdate, settings: Settings) -> Decay:
    """Set the organization's own half-lives, whole: a type left out has the server's again (admin)."""
    caller.require("admin")
    p = t.decay_policy
    rows = [{"org_id": caller.org_id, "memory_type": k, "half_life_days": v} for k, v in body.half_life_days.items()]
    async with db.tenant(caller.org_id) as conn:
        await conn.execute(delete(p).where(p.c.org_id == caller.org_id))
        if rows:
            await conn.execute(insert(p).values(updated_at=func.now()), rows)
        details = {"half_life_days": dict(body.half_life_days)}
        await audit.record(conn, caller, "decay.updated", "organization", caller.org_id, details)
    return await get(db, caller, settings)
