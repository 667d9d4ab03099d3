"""Federated insights (``client.insights``): sessions, joining and leaving, releases under differential
privacy, and your own participations' record (docs/insights.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engramdb.schemas.common import PageQuery
from engramdb.schemas.insights import (
    Contribution,
    Insight,
    InsightSession,
    InsightSessionCreate,
    InsightSessionFilters,
    Participation,
    ParticipationCreate,
    ParticipationFilters,
)
from engramdb.sdk import _common as c
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._async.resources.base import Fields, Resource
from engramdb.sdk._common import Id

if TYPE_CHECKING:
    from engramdb.sdk._async.http import AsyncHTTP


class InsightSessions(Resource):
    """``client.insights.sessions``: sessions your organization opened or is invited to."""

    @c.operation("create_insight_session")
    async def create(self, session: InsightSessionCreate | None = None, /, **fields: Fields) -> InsightSession:
        """``topic``, ``query`` (memory_types, memory_categories, fact_predicates, entity_types, task_outcomes),
        ``buckets``, ``bound``, ``epsilon`` per release, ``min_participants`` and ``invited_org_ids``."""
        sent = c.body(InsightSessionCreate, session, fields)
        return await self._client.call(InsightSession, "POST", "/v1/insights/sessions", json=sent)

    @c.operation("list_insight_sessions")
    def list(self, filters: InsightSessionFilters | None = None, /, **fields: Fields) -> AsyncPager[InsightSession]:
        """Newest invitation first. ``fields``: status, cursor, limit."""
        params = c.filters(InsightSessionFilters, filters, fields)
        return AsyncPager(self._client, "/v1/insights/sessions", InsightSession, params)

    @c.operation("get_insight_session")
    async def get(self, session_id: Id) -> InsightSession:
        return await self._client.call(InsightSession, "GET", f"/v1/insights/sessions/{c.path_id(session_id)}")

    @c.operation("close_insight_session")
    async def close(self, session_id: Id) -> InsightSession:
        path = f"/v1/insights/sessions/{c.path_id(session_id)}/close"
        return await self._client.call(InsightSession, "POST", path)

    @c.operation("join_insight_session")
    async def join(self, session_id: Id, join: ParticipationCreate | None = None, /, **fields: Fields) -> Participation:
        """Join as your organization, or as one of its federated teams (``team_id``), with ``epsilon_budget``."""
        sent = c.body(ParticipationCreate, join, fields)
        path = f"/v1/insights/sessions/{c.path_id(session_id)}/join"
        return await self._client.call(Participation, "POST", path, json=sent)

    @c.operation("leave_insight_session")
    async def leave(self, session_id: Id) -> InsightSession:
        path = f"/v1/insights/sessions/{c.path_id(session_id)}/leave"
        return await self._client.call(InsightSession, "POST", path)

    @c.operation("release_insight")
    async def release(self, session_id: Id) -> Insight:
        """Release the histogram once with noise, spending ε of each participant's budget (an idempotency
        key keeps a retried call from spending twice)."""
        path = f"/v1/insights/sessions/{c.path_id(session_id)}/release"
        return await self._client.call(Insight, "POST", path)

    @c.operation("list_insights")
    def insights(self, session_id: Id, filters: PageQuery | None = None, /, **fields: Fields) -> AsyncPager[Insight]:
        """The session's released insights, newest first. ``fields``: cursor, limit."""
        path = f"/v1/insights/sessions/{c.path_id(session_id)}/insights"
        return AsyncPager(self._client, path, Insight, c.filters(PageQuery, filters, fields))


class Participations(Resource):
    """``client.insights.participations``: your participations and their record (yours alone)."""

    @c.operation("list_participations")
    def list(self, filters: ParticipationFilters | None = None, /, **fields: Fields) -> AsyncPager[Participation]:
        """Newest first. ``fields``: status (invited, joined, left), cursor, limit."""
        params = c.filters(ParticipationFilters, filters, fields)
        return AsyncPager(self._client, "/v1/insights/participations", Participation, params)

    @c.operation("list_contributions")
    def contributions(
        self, participation_id: Id, filters: PageQuery | None = None, /, **fields: Fields
    ) -> AsyncPager[Contribution]:
        """The releases the participation was counted in, newest first."""
        path = f"/v1/insights/participations/{c.path_id(participation_id)}/contributions"
        return AsyncPager(self._client, path, Contribution, c.filters(PageQuery, filters, fields))


class Insights(Resource):
    """``client.insights``: federated insights under differential privacy."""

    def __init__(self, client: AsyncHTTP) -> None:
        super().__init__(client)
        self.sessions = InsightSessions(client)
        self.participations = Participations(client)
