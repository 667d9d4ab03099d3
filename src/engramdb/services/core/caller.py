"""Who is calling: the organization and bindings that come from the credential, never from the request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from engramdb.errors import PermissionDenied

_RANK = {"read": 0, "write": 1, "admin": 2}


@dataclass(frozen=True)
class Grant:
    """One active access grant the caller holds (``governance/sharing.py`` keeps them): ``permission`` on
    the rows of ``resource`` that match every narrowing set (``tags`` and ``categories``: any of them)."""

    id: uuid.UUID
    permission: str  # read | write (write includes read)
    resource: str  # memories | sessions | documents | repositories | facts
    owner_user_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    repository_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    memory_type: str | None = None
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sharing:
    """The grants a caller holds, read once per request with the key (``visibility.with_grants``), and the
    organization's strict teams and apps, whose rows no grant reaches."""

    grants: tuple[Grant, ...] = ()
    strict_teams: tuple[uuid.UUID, ...] = ()
    strict_apps: tuple[uuid.UUID, ...] = ()
    # The grants' SQL per table, built once per request by visibility.granted (a search asks several times).
    compiled: dict[Any, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of one operation, with the request facts the audit log records."""

    org_id: uuid.UUID
    scopes: frozenset[str]
    key_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    actor: str = "system"
    request_id: str | None = None
    client_addr: str | None = None
    sharing: Sharing = Sharing()

    @classmethod
    def operator(cls, org_id: uuid.UUID, *, actor: str = "cli") -> Caller:
        """An operator acting on the machine itself (the CLI): full rights inside one org."""
        return cls(org_id=org_id, scopes=frozenset({"admin"}), actor=actor, request_id=f"{actor}:{uuid.uuid4()}")

    def require(self, scope: str) -> None:
        """Admin implies write implies read."""
        needed = _RANK[scope]
        if not any(_RANK.get(s, -1) >= needed for s in self.scopes):
            raise PermissionDenied(f"this API key lacks the '{scope}' scope")

    @property
    def bound(self) -> bool:
        return any(v is not None for v in (self.team_id, self.user_id, self.agent_id))

    def bind(self, name: str, requested: uuid.UUID | None) -> uuid.UUID | None:
        """The value a new row gets for ``name``: the key's binding, or the request's if the key is unbound."""
        bound: uuid.UUID | None = getattr(self, name)
        if bound is None:
            return requested
        if requested is not None and requested != bound:
            if name == "user_id" and self.sharing.grants:
                # A grant may reach that user: visibility decides what a read returns, and
                # visibility.confine_write whether a write is allowed.
                return requested
            label = name.removesuffix("_id")
            raise PermissionDenied(f"this API key is bound to another {label}; it cannot write for {requested}")
        return bound
