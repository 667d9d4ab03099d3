"""Rate limits per API key and per organization, by route class, counted in PostgreSQL so that every API
process on one database shares them.

A request is counted by :func:`hit`: one statement (one round trip, no transaction of its own) reads the
organization's overrides, moves the key's and the organization's counters of the current fixed window
(``INSERT … ON CONFLICT DO UPDATE … RETURNING``), tallies the request for ``GET /v1/usage`` and says
whether it is within the limits. The window is the database's clock cut into ``ENGRAM_RATE_LIMIT_WINDOW_S``
slices, the same for every process. A request refused by its key's limit does not count against its
organization (a runaway key cannot use up its colleagues' share); it does count against its key, so a
client that keeps hammering stays refused until the window ends. The statement commits asynchronously
(``synchronous_commit`` off for it alone): a crash may forget the last counts, which costs nothing.

Limits come from the settings (``ENGRAM_RATE_LIMIT_<CLASS>`` per key, ``ENGRAM_ORG_RATE_LIMIT_<CLASS>`` per
organization; 0: no limit), and an organization's own values (``rate_limit``) replace them. An
organization's admin may set its limits at or below the server's defaults (to hold back a runaway agent);
only the operator (a keyless local caller) may raise an organization above them.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import metrics
from engramdb.config import Settings
from engramdb.errors import PermissionDenied, RateLimited, Unauthenticated
from engramdb.schemas.limits import ROUTE_CLASSES, ClassLimits, Limits, LimitsUpdate, RouteClass
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.services.tenancy import keys
from engramdb.storage import tables as t
from engramdb.storage.database import Database

ORG_ROW = uuid.UUID(int=0)  # rate_counter.key_id of the organization's own counter
MAX_JITTER_S = 15  # the most a refusal's Retry-After adds to the end of the window


@dataclass(frozen=True)
class Decision:
    """What one request used: the limit that is closest to running out (or that ran out)."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # until the window ends
    scope: Literal["key", "org"]


def defaults(settings: Settings) -> dict[RouteClass, tuple[int, int]]:
    """(per key, per organization) of each route class, from the settings."""
    return {
        cls: (getattr(settings, f"rate_limit_{cls}"), getattr(settings, f"org_rate_limit_{cls}"))
        for cls in ROUTE_CLASSES
    }


_HIT = text(
    """
WITH cfg AS (
  SELECT set_config('synchronous_commit', 'off', true) AS async_commit,
         to_timestamp(floor(extract(epoch FROM now()) / :window_s) * :window_s) AS window_start
), policy AS (
  SELECT coalesce(o.per_key, CAST(:key_default AS integer)) AS per_key,
         coalesce(o.per_org, CAST(:org_default AS integer)) AS per_org
    FROM (SELECT 1) AS one LEFT JOIN rate_limit o ON o.org_id = :org_id AND o.route_class = :cls
), key_hit AS (
  INSERT INTO rate_counter AS c (org_id, key_id, route_class, window_start, hits)
  SELECT :org_id, :key_id, :cls, cfg.window_start, 1 FROM cfg, policy WHERE policy.per_key > 0
  ON CONFLICT (org_id, key_id, route_class) DO UPDATE
     SET hits = CASE WHEN c.window_start >= excluded.window_start THEN c.hits + 1 ELSE 1 END,
         window_start = greatest(c.window_start, excluded.window_start)
  RETURNING c.hits
), org_hit AS (
  INSERT INTO rate_counter AS c (org_id, key_id, route_class, window_start, hits)
  SELECT :org_id, :org_row, :cls, cfg.window_start, 1 FROM cfg, policy
   WHERE policy.per_org > 0 AND NOT EXISTS (SELECT 1 FROM key_hit k WHERE k.hits > policy.per_key)
  ON CONFLICT (org_id, key_id, route_class) DO UPDATE
     SET hits = CASE WHEN c.window_start >= excluded.window_start THEN c.hits + 1 ELSE 1 END,
         window_start = greatest(c.window_start, excluded.window_start)
  RETURNING c.hits
), verdict AS (
  SELECT policy.per_key, policy.per_org, k.hits AS key_hits, o.hits AS org_hits, cfg.window_start,
         coalesce(k.hits > policy.per_key, false) AS key_refused,
         coalesce(o.hits > policy.per_org, false) AS org_refused
    FROM cfg CROSS JOIN policy LEFT JOIN key_hit k ON true LEFT JOIN org_hit o ON true
), tally AS (
  INSERT INTO request_tally AS t (org_id, day, route_class, requests, refused)
  SELECT :org_id, CAST(now() AT TIME ZONE 'UTC' AS date), :cls, 1, CAST(key_refused OR org_refused AS integer)
    FROM verdict
  ON CONFLICT (org_id, day, route_class) DO UPDATE
     SET requests = t.requests + 1, refused = t.refused + excluded.refused
)
SELECT per_key, per_org, key_hits, org_hits, key_refused, org_refused,
       extract(epoch FROM window_start + make_interval(secs => :window_s) - now()) AS reset_s
  FROM verdict
"""
)


@dataclass(frozen=True)
class Admitted:
    caller: Caller | None  # None: the key does not authenticate (the route answers 401, saying why)
    decision: Decision | None  # None: no limit applies


async def admit(
    db: Database,
    token: str,
    route_class: RouteClass,
    settings: Settings,
    *,
    request_id: str | None = None,
    client_addr: str | None = None,
) -> Admitted:
    """Authenticate a request's key and count the request, on one connection (two statements): the
    request's whole admission costs one checkout of the pool, refused or not."""
    async with db.autocommit() as conn:
        try:
            caller = await keys.authenticate(
                db,
                token,
                request_id=request_id,
                client_addr=client_addr,
                touch_interval_s=settings.key_touch_interval_s,
                conn=conn,
            )
        except Unauthenticated:
            return Admitted(None, None)
        return Admitted(caller, await hit(db, caller, route_class, settings, conn=conn))


async def hit(
    db: Database, caller: Caller, route_class: RouteClass, settings: Settings, *, conn: AsyncConnection | None = None
) -> Decision | None:
    """Count one request of ``caller`` in ``route_class``; the decision, or None when no limit applies."""
    per_key, per_org = defaults(settings)[route_class]
    params = {
        "org_id": caller.org_id,
        "key_id": caller.key_id or ORG_ROW,
        "org_row": ORG_ROW,
        "cls": route_class,
        "window_s": settings.rate_limit_window_s,
        "key_default": per_key if caller.key_id is not None else 0,
        "org_default": per_org,
    }
    if conn is None:
        async with db.autocommit() as own:
            row = (await own.execute(_HIT, params)).mappings().one()
    else:
        row = (await conn.execute(_HIT, params)).mappings().one()
    reset_s = max(1, math.ceil(float(row["reset_s"])))
    if row["key_refused"]:
        return Decision(False, row["per_key"], 0, reset_s, "key")
    if row["org_refused"]:
        return Decision(False, row["per_org"], 0, reset_s, "org")
    left: list[Decision] = []
    if row["key_hits"] is not None:
        left.append(Decision(True, row["per_key"], row["per_key"] - row["key_hits"], reset_s, "key"))
    if row["org_hits"] is not None:
        left.append(Decision(True, row["per_org"], row["per_org"] - row["org_hits"], reset_s, "org"))
    return min(left, key=lambda d: d.remaining) if left else None


def refusal(decision: Decision, route_class: RouteClass, settings: Settings) -> RateLimited:
    """The error of a request ``decision`` refused, worded once for every transport (the API's 429, an MCP
    tool's error result), and counted in ``engram_rate_limited``. Its ``Retry-After`` is the end of the
    window plus a random share of up to a quarter of the window (at most ``MAX_JITTER_S``): clients refused
    in one window then come back spread over the next instead of all at the moment it starts."""
    metrics.RATE_LIMITED.labels(route_class, decision.scope).inc()
    whose = "this API key's" if decision.scope == "key" else "your organization's"
    retry_after = decision.reset_s + random.randint(0, min(settings.rate_limit_window_s // 4, MAX_JITTER_S))
    return RateLimited(
        f"{whose} limit of {decision.limit} {route_class} requests per {settings.rate_limit_window_s} s is used up; "
        f"retry after {max(1, retry_after)} s",
        limit=decision.limit,
        reset_s=decision.reset_s,
        retry_after_s=retry_after,
    )


async def get(db: Database, caller: Caller, settings: Settings) -> Limits:
    """The limits in force for the caller's organization, with the defaults and its own values (admin)."""
    caller.require("admin")
    r = t.rate_limit
    async with db.tenant(caller.org_id) as conn:
        rows = (await conn.execute(select(r).where(r.c.org_id == caller.org_id))).mappings().all()
    own = {row["route_class"]: row for row in rows}
    data = []
    for cls, (key_default, org_default) in defaults(settings).items():
        mine = own.get(cls)
        override_key = mine["per_key"] if mine else None
        override_org = mine["per_org"] if mine else None
        data.append(
            ClassLimits(
                route_class=cls,
                per_key=key_default if override_key is None else override_key,
                per_org=org_default if override_org is None else override_org,
                default_per_key=key_default,
                default_per_org=org_default,
                override_per_key=override_key,
                override_per_org=override_org,
            )
        )
    return Limits(window_s=settings.rate_limit_window_s, data=data)


def _check_ceiling(caller: Caller, cls: str, which: str, value: int | None, default: int) -> None:
    if value is None or caller.key_id is None or default == 0:
        return
    if value == 0 or value > default:
        wanted = "no limit" if value == 0 else str(value)
        raise PermissionDenied(
            f"{cls}.{which}: {wanted} is above this server's default of {default} per window; only the "
            "server's operator can raise an organization's limits above the defaults"
        )


async def replace(db: Database, caller: Caller, body: LimitsUpdate, settings: Settings) -> Limits:
    """Set the organization's own limits, whole (a class left out has the defaults again) (admin)."""
    caller.require("admin")
    wanted = {cls: getattr(body, cls) for cls in ROUTE_CLASSES}
    for cls, (key_default, org_default) in defaults(settings).items():
        values = wanted[cls]
        if values is not None:
            _check_ceiling(caller, cls, "per_key", values.per_key, key_default)
            _check_ceiling(caller, cls, "per_org", values.per_org, org_default)
    r = t.rate_limit
    rows = [
        {"org_id": caller.org_id, "route_class": cls, "per_key": v.per_key, "per_org": v.per_org}
        for cls, v in wanted.items()
        if v is not None and (v.per_key is not None or v.per_org is not None)
    ]
    async with db.tenant(caller.org_id) as conn:
        await conn.execute(delete(r).where(r.c.org_id == caller.org_id))
        if rows:
            await conn.execute(insert(r).values(updated_at=func.now()), rows)
        details = {row["route_class"]: {"per_key": row["per_key"], "per_org": row["per_org"]} for row in rows}
        await audit.record(conn, caller, "limits.updated", "organization", caller.org_id, {"limits": details})
    return await get(db, caller, settings)
