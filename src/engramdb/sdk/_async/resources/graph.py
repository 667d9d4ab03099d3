"""The knowledge graph: ``client.facts``, ``client.entities`` and ``client.predicates``."""

from __future__ import annotations

from datetime import datetime

from engramdb.schemas.graph import (
    Entity,
    EntityFilters,
    EntityMerge,
    EntitySplit,
    EntityUpdate,
    Fact,
    FactCreate,
    FactFilters,
    FactResult,
    Neighbourhood,
    Paths,
    Predicate,
    PredicateFilters,
    PredicateUpdate,
)
from engramdb.sdk import _common as c
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._async.resources.base import Fields, Resource
from engramdb.sdk._common import Id


class Facts(Resource):
    @c.operation("create_fact")
    async def create(self, fact: FactCreate | None = None, /, **fields: Fields) -> FactResult:
        """Record a subject–predicate–object triple; consolidated like extracted facts (ADD / NOOP /
        INVALIDATE)."""
        return await self._client.call(FactResult, "POST", "/v1/facts", json=c.body(FactCreate, fact, fields))

    @c.operation("list_facts")
    def list(self, filters: FactFilters | None = None, /, **fields: Fields) -> AsyncPager[Fact]:
        """Newest first. ``fields``: those of ``FactFilters`` (subject, entity_id, predicate, user_id,
        valid_at: what was true then, known_at: what Engram believed then, include_history, cursor, limit)."""
        return AsyncPager(self._client, "/v1/facts", Fact, c.filters(FactFilters, filters, fields))

    @c.operation("get_fact")
    async def get(self, fact_id: Id) -> Fact:
        return await self._client.call(Fact, "GET", f"/v1/facts/{c.path_id(fact_id)}")

    @c.operation("retract_fact")
    async def retract(self, fact_id: Id) -> Fact:
        return await self._client.call(Fact, "DELETE", f"/v1/facts/{c.path_id(fact_id)}")


class Entities(Resource):
    @c.operation("list_entities")
    def list(self, filters: EntityFilters | None = None, /, **fields: Fields) -> AsyncPager[Entity]:
        """Newest first. ``fields``: q (part of a name or alias), type, user_id, cursor, limit."""
        return AsyncPager(self._client, "/v1/entities", Entity, c.filters(EntityFilters, filters, fields))

    @c.operation("get_entity")
    async def get(self, entity_id: Id) -> Entity:
        return await self._client.call(Entity, "GET", f"/v1/entities/{c.path_id(entity_id)}")

    @c.operation("update_entity")
    async def update(self, entity_id: Id, change: EntityUpdate | None = None, /, **fields: Fields) -> Entity:
        sent = c.body(EntityUpdate, change, fields)
        return await self._client.call(Entity, "PATCH", f"/v1/entities/{c.path_id(entity_id)}", json=sent)

    @c.operation("merge_entities")
    async def merge(self, entity_id: Id, merge: EntityMerge | None = None, /, **fields: Fields) -> Entity:
        sent = c.body(EntityMerge, merge, fields)
        return await self._client.call(Entity, "POST", f"/v1/entities/{c.path_id(entity_id)}/merge", json=sent)

    @c.operation("split_entity")
    async def split(self, entity_id: Id, split: EntitySplit | None = None, /, **fields: Fields) -> Entity:
        sent = c.body(EntitySplit, split, fields)
        return await self._client.call(Entity, "POST", f"/v1/entities/{c.path_id(entity_id)}/split", json=sent)

    @c.operation("get_entity_neighbors")
    async def neighbors(
        self,
        entity_id: Id,
        *,
        depth: int | None = None,
        valid_at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Neighbourhood:
        params = {"depth": depth, "valid_at": valid_at, "known_at": known_at}
        path = f"/v1/entities/{c.path_id(entity_id)}/neighbors"
        return await self._client.call(Neighbourhood, "GET", path, params=params)

    @c.operation("get_entity_paths")
    async def paths(
        self,
        entity_id: Id,
        target_id: Id,
        *,
        max_depth: int | None = None,
        limit: int | None = None,
        valid_at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Paths:
        params = {"max_depth": max_depth, "limit": limit, "valid_at": valid_at, "known_at": known_at}
        path = f"/v1/entities/{c.path_id(entity_id)}/paths/{c.path_id(target_id)}"
        return await self._client.call(Paths, "GET", path, params=params)


class Predicates(Resource):
    """The predicate catalogue: which predicates hold one object at a time (``one``: a new fact closes the
    current one) and which many. A fact created without ``single_valued`` follows it, and so does extraction."""

    @c.operation("list_predicates")
    def list(self, filters: PredicateFilters | None = None, /, **fields: Fields) -> AsyncPager[Predicate]:
        """By name, built-in and the organization's own. ``fields``: cardinality, source, cursor, limit."""
        return AsyncPager(self._client, "/v1/predicates", Predicate, c.filters(PredicateFilters, filters, fields))

    @c.operation("get_predicate")
    async def get(self, name: str) -> Predicate:
        return await self._client.call(Predicate, "GET", f"/v1/predicates/{c.path_id(name)}")

    @c.operation("set_predicate")
    async def set(self, name: str, definition: PredicateUpdate | None = None, /, **fields: Fields) -> Predicate:
        """Define ``name`` (``cardinality``: one or many, ``description``), or override a built-in (admin)."""
        sent = c.body(PredicateUpdate, definition, fields)
        return await self._client.call(Predicate, "PUT", f"/v1/predicates/{c.path_id(name)}", json=sent)

    @c.operation("delete_predicate")
    async def delete(self, name: str) -> None:
        """Remove the organization's definition; a built-in predicate has its default again (admin)."""
        await self._client.request("DELETE", f"/v1/predicates/{c.path_id(name)}")
