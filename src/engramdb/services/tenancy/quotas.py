"""Rate limits per API key and per organization, by route class, counted in PostgreSQL so that every API
process on one database shares them.

A limit of N requests per window of W seconds (``ENGRAM_RATE_LIMIT_WINDOW_S``) is a generic cell rate
algorithm (GCRA, the token bucket kept as one timestamp): each counter holds its theoretical arrival
time, which a request moves one interval (W/N s) ahead of the later of itself and the clock; a request is
allowed while it stays at most ``burst - 1`` intervals ahead, ``burst`` being N times
``ENGRAM_RATE_LIMIT_BURST`` rounded up. So a client that has been quiet may send ``burst`` requests at
once and then one per interval, the allowance coming back continuously instead of all at once when a
fixed window starts (which let every refused client return in the same second, a burst larger than the
machine could take). A refused request moves nothing: a client that keeps asking gets the steady rate.
Intervals are whole microseconds (at least one), so ``RateLimit-Remaining`` counts whole requests.

A request is counted by :func:`hit`: one statement (one round trip, no transaction of its own) reads the
organization's overrides, moves the key's and the organization's counters
(``INSERT … ON CONFLICT DO UPDATE … RETURNING``: the row is locked while it is moved, so processes
counting at once never both take the last request, and a refusal's wait is read from the row as locked),
tallies the request for ``GET /v1/usage`` and says whether it is within the limits. Time is the
database's clock, the same for every process. A request refused by its key's limit does not count
against its organization (a runaway key cannot use up its colleagues' share); one refused by its
organization's limit gives its key's move back (a second statement, only then). The statement commits
asynchronously (``synchronous_commit`` off for it alone): a crash may forget the last counts, which costs
nothing.

Limits come from the settings (``ENGRAM_RATE_LIMIT_<CLASS>`` per key, ``ENGRAM_ORG_RATE_LIMIT_<CLASS>`` per
organization; 0: no limit), and an organization's own values (``rate_limit``) replace them. An
organization's admin may set its limits at or below the server's defaults (to hold back a runaway agent);
only the operator (a keyless local caller) may raise an organization above them.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import RowMapping, delete, func, insert, select, text
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
MAX_JITTER_S = 15  # the most a refusal's Retry-After adds to the wait for the next allowed request


@dataclass(frozen=True)
class Decision:
    """What one request used: the limit that is closest to running out (or that ran out)."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # allowed: until the whole allowance is back; refused: until the next request is allowed
    scope: Literal["key", "org"]


def defaults(settings: Settings) -> dict[RouteClass, tuple[int, int]]:
    """(per key, per organization) of each route class, from the settings."""
    return {
        cls: (getattr(settings, f"rate_limit_{cls}"), getattr(settings, f"org_rate_limit_{cls}"))
        for cls in ROUTE_CLASSES
    }


# A counter's moves, each of ``us`` microseconds (an interval W/N rounded to a microsecond, at least one).
# The clock is read once per counter, when its row is locked (``clock_timestamp()``, not the statement's
# start ``now()``): a statement that waited for the lock must not judge a counter another one just moved by
# an older clock, and the move and the verdict must read the same clock. A counter at most ``burst - 1``
# intervals ahead of the clock allows the request.
_MOVE = """(tat, refused) = (
       SELECT CASE WHEN v.ok THEN greatest(c.tat, n.t) + r.{who}_us * interval '1 microsecond' ELSE c.tat END,
              NOT v.ok
         FROM rates AS r, (SELECT clock_timestamp() AS t) AS n,
              LATERAL (SELECT c.tat - n.t <= r.{who}_us * interval '1 microsecond' * (r.{who}_b - 1) AS ok) AS v)"""
_HIT = text(
    """
WITH cfg AS (
  SELECT set_config('synchronous_commit', 'off', true) AS async_commit
), policy AS (
  SELECT CASE WHEN :keyed THEN coalesce(o.per_key, CAST(:key_default AS integer)) ELSE 0 END AS per_key,
         coalesce(o.per_org, CAST(:org_default AS integer)) AS per_org
    FROM (SELECT 1) AS one LEFT JOIN rate_limit o ON o.org_id = :org_id AND o.route_class = :cls
), rates AS (
  SELECT per_key, per_org,
         CAST(greatest(1, round(:window_s * 1e6 / greatest(per_key, 1))) AS bigint) AS key_us,
         CAST(greatest(1, round(:window_s * 1e6 / greatest(per_org, 1))) AS bigint) AS org_us,
         CAST(greatest(1, ceil(per_key * CAST(:burst AS numeric))) AS bigint) AS key_b,
         CAST(greatest(1, ceil(per_org * CAST(:burst AS numeric))) AS bigint) AS org_b
    FROM policy, cfg
), key_hit AS (
  INSERT INTO rate_counter AS c (org_id, key_id, route_class, tat, refused)
  SELECT :org_id, :key_id, :cls, clock_timestamp() + key_us * interval '1 microsecond', false FROM rates
   WHERE per_key > 0
  ON CONFLICT (org_id, key_id, route_class) DO UPDATE
     SET {key_move}
  RETURNING extract(epoch FROM c.tat - clock_timestamp()) * 1e6 AS ahead_us, c.refused
), org_hit AS (
  INSERT INTO rate_counter AS c (org_id, key_id, route_class, tat, refused)
  SELECT :org_id, :org_row, :cls, clock_timestamp() + org_us * interval '1 microsecond', false FROM rates
   WHERE per_org > 0 AND NOT EXISTS (SELECT 1 FROM key_hit WHERE refused)
  ON CONFLICT (org_id, key_id, route_class) DO UPDATE
     SET {org_move}
  RETURNING extract(epoch FROM c.tat - clock_timestamp()) * 1e6 AS ahead_us, c.refused
), verdict AS (
  SELECT r.*,
         coalesce(k.refused, false) AS key_refused,
         coalesce(o.refused, false) AS org_refused,
         k.ahead_us AS key_ahead_us,
         o.ahead_us AS org_ahead_us
    FROM rates r LEFT JOIN key_hit k ON true LEFT JOIN org_hit o ON true
), tally AS (
  INSERT INTO request_tally AS t (org_id, day, route_class, requests, refused)
  SELECT :org_id, CAST(now() AT TIME ZONE 'UTC' AS date), :cls, 1, CAST(key_refused OR org_refused AS integer)
    FROM verdict
  ON CONFLICT (org_id, day, route_class) DO UPDATE
     SET requests = t.requests + 1, refused = t.refused + excluded.refused
)
SELECT * FROM verdict
""".format(key_move=_MOVE.format(who="key"), org_move=_MOVE.format(who="org"))
)
# A request its organization refused gives back the move its key's counter made for it.
_GIVE_BACK = text(
    "UPDATE rate_counter SET tat = tat - :us * interval '1 microsecond' "
    "WHERE org_id = :org_id AND key_id = :key_id AND route_class = :cls AND NOT refused"
)


def _decision(row: RowMapping, scope: Literal["key", "org"]) -> Decision:
    """What the counter of ``scope`` says: a counter's theoretical arrival time (``tat``, now ``ahead_us``
    past the clock, as the row was locked) may run ahead by at most ``burst - 1`` intervals before a
    request, so ``burst`` may come at once and then one per interval. Allowed: the requests left now, and
    the seconds until the whole allowance is back. Refused: the seconds until the next one is allowed."""
    limit, interval_us, burst = row[f"per_{scope}"], row[f"{scope}_us"], row[f"{scope}_b"]
    ahead_us = float(row[f"{scope}_ahead_us"])
    if row[f"{scope}_refused"]:
        wait_us = ahead_us - (burst - 1) * interval_us
        return Decision(False, limit, 0, max(1, math.ceil(wait_us / 1e6)), scope)
    remaining = max(0, math.floor(burst - ahead_us / interval_us + 1e-6))
    return Decision(True, limit, remaining, max(1, math.ceil(ahead_us / 1e6)), scope)


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
        "burst": settings.rate_limit_burst,
        "keyed": caller.key_id is not None,
        "key_default": per_key if caller.key_id is not None else 0,
        "org_default": per_org,
    }
    if conn is None:
        async with db.autocommit() as own:
            return await _count(own, params)
    return await _count(conn, params)


async def _count(conn: AsyncConnection, params: Mapping[str, object]) -> Decision | None:
    row = (await conn.execute(_HIT, params)).mappings().one()
    if row["key_refused"]:
        return _decision(row, "key")
    if row["org_refused"]:
        if row["key_ahead_us"] is not None:
            keyed = {k: params[k] for k in ("org_id", "key_id", "cls")}
            await conn.execute(_GIVE_BACK, {**keyed, "us": row["key_us"]})
        return _decision(row, "org")
    left = [_decision(row, scope) for scope in ("key", "org") if row[f"{scope}_ahead_us"] is not None]
    return min(left, key=lambda d: d.remaining) if left else None


def refusal(decision: Decision, route_class: RouteClass, settings: Settings) -> RateLimited:
    """The error of a request ``decision`` refused, worded once for every transport (the API's 429, an MCP
    tool's error result), and counted in ``engram_rate_limited``. Its ``Retry-After`` is the wait until the
    next request would be allowed plus a random share of up to as much again (at most ``MAX_JITTER_S``):
    clients refused together come back spread out, not all in the one moment a single request is allowed."""
    metrics.RATE_LIMITED.labels(route_class, decision.scope).inc()
    whose = "this API key's" if decision.scope == "key" else "your organization's"
    retry_after = decision.reset_s + random.randint(0, min(decision.reset_s, MAX_JITTER_S))
    return RateLimited(
        f"{whose} limit of {decision.limit} {route_class} requests per {settings.rate_limit_window_s} s is used up "
        f"for now; retry after {retry_after} s",
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
    return Limits(window_s=settings.rate_limit_window_s, burst=settings.rate_limit_burst, data=data)


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
