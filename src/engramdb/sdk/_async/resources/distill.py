"""What the worker derives: ``client.users.narratives``, a user's versioned profile."""

from __future__ import annotations

from engramdb.schemas.jobs import Job
from engramdb.schemas.narratives import Narrative, NarrativeFilters
from engramdb.sdk import _common as c
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._async.resources.base import Fields, Resource
from engramdb.sdk._common import Id


class Narratives(Resource):
    """``client.users.narratives``: the versioned profile of a user."""

    @c.operation("refresh_user_narrative")
    async def refresh(self, user_id: Id, *, wait: bool = False) -> Job:
        path = f"/v1/users/{c.path_id(user_id)}/narrative"
        return await self._client.call(Job, "POST", path, params={"wait": wait})

    @c.operation("get_user_narrative")
    async def get(self, user_id: Id) -> Narrative:
        return await self._client.call(Narrative, "GET", f"/v1/users/{c.path_id(user_id)}/narrative")

    @c.operation("list_user_narratives")
    def list(self, user_id: Id, filters: NarrativeFilters | None = None, /, **fields: Fields) -> AsyncPager[Narrative]:
        """Every version, newest first. ``fields``: cursor, limit."""
        path = f"/v1/users/{c.path_id(user_id)}/narratives"
        return AsyncPager(self._client, path, Narrative, c.filters(NarrativeFilters, filters, fields))
