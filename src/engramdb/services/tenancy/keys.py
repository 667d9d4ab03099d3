"""Organizations and API keys: creation, authentication, listing, revocation.

A key reads ``egm_<prefix>_<secret>``: the prefix finds the row (it is not secret), the whole key is
stored only as a SHA-256 digest and compared in constant time. The secret has ~238 bits of entropy,
so a fast hash is the right tool here (password hashes exist to slow down guessing low-entropy input).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids, limits
from engramdb.errors import Conflict, Unauthenticated, ValidationFailed
from engramdb.schemas.common import Page
from engramdb.schemas.directory import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyFilters,
    ApiKeyUpdate,
    Organization,
    OrganizationCreate,
)
from engramdb.services.core import audit, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.tenancy import directory
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404, page_by_id, require_row

KEY_SCHEME = "egm"
_KEYS_LOCK = 0x656B6579  # advisory lock namespaces (two-int form: namespace, key)
_ORGS_LOCK = 0x6F726773
_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_key() -> tuple[str, str]:
    """A new (prefix, full key)."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return prefix, f"{KEY_SCHEME}_{prefix}_{secret}"


def _public(row: dict[str, Any]) -> ApiKey:
    return ApiKey.model_validate(row)


async def _insert_key(conn: AsyncConnection, org_id: uuid.UUID, body: ApiKeyCreate) -> tuple[dict[str, Any], str]:
    prefix, token = generate_key()
    values = {
        "org_id": org_id,
        "id": ids.uuid7(),
        "name": body.name,
        "prefix": prefix,
        "secret_hash": _digest(token),
        "scopes": list(body.scopes),
        "team_id": body.team_id,
        "user_id": body.user_id,
        "agent_id": body.agent_id,
        "expires_at": body.expires_at,
    }
    row = (await conn.execute(insert(t.api_key).values(**values).returning(t.api_key))).mappings().one()
    return dict(row), token


async def create_organization(db: Database, *, name: str, actor: str = "cli") -> tuple[Organization, ApiKeyCreated]:
    """A new organization and its first admin key (the only way an org comes to exist)."""
    try:
        name = OrganizationCreate(name=name).name
    except ValidationError as exc:
        raise ValidationFailed(f"an organization name must be 1 to {limits.MAX_NAME_CHARS} characters") from exc
    org_id = ids.uuid7()
    caller = Caller.operator(org_id, actor=actor)
    async with db.system() as conn:
        # Names are unique across the server; creation is rare, so one lock serialises it simply.
        await conn.execute(select(func.pg_advisory_xact_lock(_ORGS_LOCK, 0)))
        taken = await conn.scalar(select(func.count()).select_from(t.organization).where(t.organization.c.name == name))
        if taken:
            raise Conflict(
                f"an organization named '{name}' already exists; create more keys for it with "
                f"`engramdb keys create --org {name}`"
            )
        org = (
            (
                await conn.execute(
                    insert(t.organization).values(org_id=org_id, name=name, metadata={}).returning(t.organization)
                )
            )
            .mappings()
            .one()
        )
        await audit.record(conn, caller, "organization.created", "organization", org_id, {"name": name})
        row, token = await _insert_key(conn, org_id, ApiKeyCreate(name="initial admin key", scopes=["admin"]))
        await audit.record(conn, caller, "api_key.created", "api_key", row["id"], {"scopes": row["scopes"]})
    organization = Organization(
        id=org["org_id"], name=org["name"], metadata=org["metadata"], created_at=org["created_at"]
    )
    return organization, ApiKeyCreated.model_validate({**row, "api_key": token})


async def find_organizations(db: Database, ref: str) -> list[Organization]:
    """Organizations whose id or name is ``ref`` (operator use: the CLI)."""
    o = t.organization
    cond = o.c.name == ref
    try:
        cond = or_(cond, o.c.org_id == uuid.UUID(ref))
    except ValueError:
        pass
    async with db.system() as conn:
        rows = (await conn.execute(select(o).where(cond).order_by(o.c.org_id))).mappings().all()
    return [Organization.model_validate({**r, "id": r["org_id"]}) for r in rows]


async def list_organizations(db: Database) -> list[Organization]:
    o = t.organization
    async with db.system() as conn:
        rows = (await conn.execute(select(o).order_by(o.c.org_id))).mappings().all()
    return [Organization.model_validate({**r, "id": r["org_id"]}) for r in rows]


async def authenticate(
    db: Database,
    token: str,
    *,
    request_id: str | None = None,
    client_addr: str | None = None,
    touch_interval_s: int = 60,
    conn: AsyncConnection | None = None,
) -> Caller:
    """Resolve a presented key to its caller, or raise 401 saying why. On ``conn`` (an autocommit
    connection the caller holds for more statements) when given, else on a connection of its own."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or len(parts[1]) != 12:
        raise Unauthenticated("the API key is malformed: expected 'Authorization: Bearer egm_…'")
    if conn is None:
        async with db.autocommit() as own:
            return await authenticate(
                db, token, request_id=request_id, client_addr=client_addr, touch_interval_s=touch_interval_s, conn=own
            )
    digest = _digest(token)
    k = t.api_key
    shares = visibility.shares(k.c.org_id).label("shares")  # whether to read grants: none, no second query
    rows = (await conn.execute(select(k, shares).where(k.c.prefix == parts[1]))).mappings().all()
    row = next((r for r in rows if hmac.compare_digest(r["secret_hash"], digest)), None)
    if row is None:
        raise Unauthenticated("the API key is not valid")
    now = datetime.now(UTC)
    if row["revoked_at"] is not None:
        raise Unauthenticated("the API key was revoked; ask an admin of your organization for a new one")
    if row["expires_at"] is not None and row["expires_at"] <= now:
        raise Unauthenticated("the API key has expired; ask an admin of your organization for a new one")
    last = row["last_used_at"]
    if last is None or now - last >= timedelta(seconds=touch_interval_s):
        await conn.execute(
            update(k).where(k.c.org_id == row["org_id"], k.c.id == row["id"]).values(last_used_at=func.now())
        )
    caller = Caller(
        org_id=row["org_id"],
        scopes=frozenset(row["scopes"]),
        key_id=row["id"],
        team_id=row["team_id"],
        user_id=row["user_id"],
        agent_id=row["agent_id"],
        actor=f"key:{row['prefix']}",
        request_id=request_id,
        client_addr=client_addr,
    )
    # Read afresh with every request, so a revoked or expired grant no longer applies to the next one.
    return await visibility.with_grants(conn, caller) if row["shares"] else caller


async def create_key(db: Database, caller: Caller, body: ApiKeyCreate) -> ApiKeyCreated:
    """A new key. A user named by ``external_user_id`` is found, or created as a write would create them,
    so a key can be issued to a user of the app before Engram has heard of them."""
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        await require_row(conn, t.team, caller.org_id, body.team_id, "team")
        if body.external_user_id is not None:
            user_id = await directory.resolve_user(conn, caller, user_id=None, external_user_id=body.external_user_id)
            body = body.model_copy(update={"user_id": user_id, "external_user_id": None})
        else:
            await require_row(conn, t.user_account, caller.org_id, body.user_id, "user")
        await require_row(conn, t.agent, caller.org_id, body.agent_id, "agent")
        row, token = await _insert_key(conn, caller.org_id, body)
        await audit.record(
            conn, caller, "api_key.created", "api_key", row["id"], {"scopes": row["scopes"], "name": row["name"]}
        )
    return ApiKeyCreated.model_validate({**row, "api_key": token})


async def list_keys(db: Database, caller: Caller, filters: ApiKeyFilters) -> Page[ApiKey]:
    caller.require("admin")
    k = t.api_key
    query = select(k).where(k.c.org_id == caller.org_id)
    if not filters.include_revoked:
        query = query.where(k.c.revoked_at.is_(None))
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(conn, query, k, cursor=filters.cursor, limit=filters.limit)
    return Page[ApiKey](data=[_public(r) for r in rows], next_cursor=next_cursor)


async def get_key(db: Database, caller: Caller, key_id: uuid.UUID) -> ApiKey:
    caller.require("admin")
    k = t.api_key
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, select(k).where(k.c.org_id == caller.org_id, k.c.id == key_id), "API key", key_id)
    return _public(row)


async def update_key(db: Database, caller: Caller, key_id: uuid.UUID, body: ApiKeyUpdate) -> ApiKey:
    caller.require("admin")
    k = t.api_key
    async with db.tenant(caller.org_id) as conn:
        stmt = (
            update(k)
            .where(k.c.org_id == caller.org_id, k.c.id == key_id)
            .values(name=body.name, updated_at=func.now())
            .returning(k)
        )
        row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            await one_or_404(conn, select(k).where(k.c.id == key_id, k.c.org_id == caller.org_id), "API key", key_id)
        assert row is not None
        await audit.record(conn, caller, "api_key.updated", "api_key", key_id, {"name": body.name})
    return _public(dict(row))


async def revoke_key(db: Database, caller: Caller, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key at once. The org's last admin key that does not expire cannot be revoked (that would
    lock it out: an admin key that expires soon would leave it without one)."""
    caller.require("admin")
    k = t.api_key
    async with db.tenant(caller.org_id) as conn:
        # One revocation at a time per org, so two admins revoking each other's keys cannot lock it out.
        await conn.execute(select(func.pg_advisory_xact_lock(_KEYS_LOCK, func.hashtext(str(caller.org_id)))))
        row = await one_or_404(
            conn,
            select(k).where(k.c.org_id == caller.org_id, k.c.id == key_id).with_for_update(),
            "API key",
            key_id,
        )
        if row["revoked_at"] is None:
            if "admin" in row["scopes"]:
                others = await conn.scalar(
                    select(func.count())
                    .select_from(k)
                    .where(
                        k.c.org_id == caller.org_id,
                        k.c.id != key_id,
                        k.c.revoked_at.is_(None),
                        k.c.scopes.contains(["admin"]),
                        k.c.expires_at.is_(None),  # a key that will expire cannot keep the org open
                    )
                )
                if not others:
                    raise Conflict(
                        "this is the organization's last admin key that does not expire; create another admin key "
                        "without an expiry first"
                    )
            stmt = update(k).where(k.c.org_id == caller.org_id, k.c.id == key_id)
            row = dict(
                (await conn.execute(stmt.values(revoked_at=func.now(), updated_at=func.now()).returning(k)))
                .mappings()
                .one()
            )
            await audit.record(conn, caller, "api_key.revoked", "api_key", key_id)
    return _public(row)
