"""The directory (teams, users, agents, apps) and API keys: ``client.teams``, ``client.users`` …"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from engramdb.schemas.agents import Heartbeat, HeartbeatAck
from engramdb.schemas.common import PageQuery
from engramdb.schemas.directory import (
    Agent,
    AgentCreate,
    AgentFilters,
    AgentUpdate,
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyFilters,
    ApiKeyUpdate,
    App,
    AppCreate,
    AppFilters,
    AppUpdate,
    OrganizationUpdate,
    Team,
    TeamCreate,
    TeamFilters,
    TeamUpdate,
    User,
    UserCreate,
    UserFilters,
    UserUpdate,
)
from engramdb.schemas.directory import Organization as OrganizationModel
from engramdb.schemas.erasure import ErasureReceipt
from engramdb.schemas.limits import Limits as LimitsModel
from engramdb.schemas.limits import LimitsUpdate
from engramdb.sdk import _common as c
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._async.resources.base import Fields, Resource
from engramdb.sdk._async.resources.distill import Narratives
from engramdb.sdk._common import Id

if TYPE_CHECKING:
    from engramdb.sdk._async.http import AsyncHTTP

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound=BaseModel)
U = TypeVar("U", bound=BaseModel)


class _Directory(Resource, Generic[M, C, U]):
    """Teams, users, agents and apps share one shape: each subclass names its path, models and the
    operation ids of its five methods (``ops``), which mark per-class copies of these methods."""

    _path = ""
    _model: type[M]
    _create: type[C]
    _update: type[U]
    _filters: type[PageQuery]

    def __init_subclass__(cls, ops: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, operation_id in (ops or {}).items():
            inherited = getattr(cls, name)

            @functools.wraps(inherited)
            def marked(self: Any, *args: Any, __call: Any = inherited, **fields: Any) -> Any:
                return __call(self, *args, **fields)

            setattr(cls, name, c.operation(operation_id)(marked))

    async def create(self, item: C | None = None, /, **fields: Fields) -> M:
        return await self._client.call(self._model, "POST", self._path, json=c.body(self._create, item, fields))

    def list(self, filters: PageQuery | None = None, /, **fields: Fields) -> AsyncPager[M]:
        """Newest first. ``filters``: the resource's ``XFilters`` (``TeamFilters`` …); ``fields``: cursor, limit."""
        return AsyncPager(self._client, self._path, self._model, c.filters(self._filters, filters, fields))

    async def get(self, item_id: Id) -> M:
        return await self._client.call(self._model, "GET", f"{self._path}/{c.path_id(item_id)}")

    async def update(self, item_id: Id, change: U | None = None, /, **fields: Fields) -> M:
        sent = c.body(self._update, change, fields)
        return await self._client.call(self._model, "PATCH", f"{self._path}/{c.path_id(item_id)}", json=sent)

    async def delete(self, item_id: Id) -> None:
        await self._client.request("DELETE", f"{self._path}/{c.path_id(item_id)}")


def _crud(noun: str) -> dict[str, str]:
    """The operation ids of a directory resource's five methods."""
    names = {"create": "create_{}", "list": "list_{}s", "get": "get_{}", "update": "update_{}", "delete": "delete_{}"}
    return {method: pattern.format(noun) for method, pattern in names.items()}


class Teams(_Directory[Team, TeamCreate, TeamUpdate], ops=_crud("team")):
    _path, _model, _create, _update, _filters = "/v1/teams", Team, TeamCreate, TeamUpdate, TeamFilters


class Agents(_Directory[Agent, AgentCreate, AgentUpdate], ops=_crud("agent")):
    _path, _model, _create, _update, _filters = "/v1/agents", Agent, AgentCreate, AgentUpdate, AgentFilters

    @c.operation("erase_agent")
    async def erase(self, agent_id: Id) -> ErasureReceipt:
        """Erase the agent and all it holds (its sessions, memories, facts, documents, keys, mailbox) for
        good; the answer is the erasure's receipt: keep it. ``delete`` only unlinks what it holds."""
        return await self._client.call(ErasureReceipt, "POST", f"/v1/agents/{c.path_id(agent_id)}/erase")

    @c.operation("agent_heartbeat")
    async def heartbeat(self, agent_id: Id, beat: Heartbeat | None = None, /, **fields: Fields) -> HeartbeatAck:
        """The agent is alive (``status``: active, busy or error; ``metrics``); a repeat does no harm."""
        sent = c.body(Heartbeat, beat, fields)
        path = f"/v1/agents/{c.path_id(agent_id)}/heartbeat"
        return await self._client.call(HeartbeatAck, "POST", path, json=sent, idempotent=True)


class Apps(_Directory[App, AppCreate, AppUpdate], ops=_crud("app")):
    _path, _model, _create, _update, _filters = "/v1/apps", App, AppCreate, AppUpdate, AppFilters


class Users(_Directory[User, UserCreate, UserUpdate], ops=_crud("user")):
    _path, _model, _create, _update, _filters = "/v1/users", User, UserCreate, UserUpdate, UserFilters

    def __init__(self, client: AsyncHTTP) -> None:
        super().__init__(client)
        self.narratives = Narratives(client)

    @c.operation("erase_user")
    async def erase(self, user_id: Id) -> ErasureReceipt:
        """Erase the user and all they hold for good (``delete`` does the same, without a receipt); the
        answer is the erasure's receipt: keep it. A retry after a lost answer gets the same receipt."""
        return await self._client.call(ErasureReceipt, "POST", f"/v1/users/{c.path_id(user_id)}/erase")

    @c.operation("get_user_by_external_id")
    async def get_by_external_id(self, external_id: str) -> User:
        return await self._client.call(User, "GET", f"/v1/users/by-external-id/{c.path_id(external_id)}")


class Keys(Resource):
    """API keys of the caller's organization (admin keys only)."""

    @c.operation("create_api_key")
    async def create(self, key: ApiKeyCreate | None = None, /, **fields: Fields) -> ApiKeyCreated:
        return await self._client.call(ApiKeyCreated, "POST", "/v1/keys", json=c.body(ApiKeyCreate, key, fields))

    @c.operation("list_api_keys")
    def list(self, filters: ApiKeyFilters | None = None, /, **fields: Fields) -> AsyncPager[ApiKey]:
        """Newest first. ``fields``: include_revoked, cursor, limit."""
        return AsyncPager(self._client, "/v1/keys", ApiKey, c.filters(ApiKeyFilters, filters, fields))

    @c.operation("get_api_key")
    async def get(self, key_id: Id) -> ApiKey:
        return await self._client.call(ApiKey, "GET", f"/v1/keys/{c.path_id(key_id)}")

    @c.operation("update_api_key")
    async def update(self, key_id: Id, change: ApiKeyUpdate | None = None, /, **fields: Fields) -> ApiKey:
        sent = c.body(ApiKeyUpdate, change, fields)
        return await self._client.call(ApiKey, "PATCH", f"/v1/keys/{c.path_id(key_id)}", json=sent)

    @c.operation("delete_api_key")
    async def delete(self, key_id: Id) -> ApiKey:
        return await self._client.call(ApiKey, "DELETE", f"/v1/keys/{c.path_id(key_id)}")

    @c.operation("revoke_api_key")
    async def revoke(self, key_id: Id) -> ApiKey:
        return await self._client.call(ApiKey, "POST", f"/v1/keys/{c.path_id(key_id)}/revoke", idempotent=True)


class Limits(Resource):
    """The organization's rate limits (admin keys only)."""

    @c.operation("get_limits")
    async def get(self) -> LimitsModel:
        return await self._client.call(LimitsModel, "GET", "/v1/limits")

    @c.operation("set_limits")
    async def set(self, limits: LimitsUpdate | None = None, /, **fields: Fields) -> LimitsModel:
        """Replace the organization's own limits, whole: ``set(writes={"per_key": 100})``; a class left out
        has the server's defaults again. Values above the defaults are the operator's to set."""
        return await self._client.call(LimitsModel, "PUT", "/v1/limits", json=c.body(LimitsUpdate, limits, fields))


class Organization(Resource):
    """``client.organization``: the key's own organization and its isolation level."""

    @c.operation("get_organization")
    async def get(self) -> OrganizationModel:
        return await self._client.call(OrganizationModel, "GET", "/v1/organization")

    @c.operation("update_organization")
    async def update(self, change: OrganizationUpdate | None = None, /, **fields: Fields) -> OrganizationModel:
        """``isolation``: strict, shared or federated (federated joins federated insights). Admin, unbound key."""
        sent = c.body(OrganizationUpdate, change, fields)
        return await self._client.call(OrganizationModel, "PATCH", "/v1/organization", json=sent)
