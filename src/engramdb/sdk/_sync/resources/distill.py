# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""What the worker derives: ``client.users.narratives``, a user's versioned profile."""

from __future__ import annotations

from engramdb.schemas.jobs import Job
from engramdb.schemas.narratives import Narrative, NarrativeFilters
from engramdb.sdk import _common as c
from engramdb.sdk._common import Id
from engramdb.sdk._sync.pager import Pager
from engramdb.sdk._sync.resources.base import Fields, Resource


class Narratives(Resource):
    """``client.users.narratives``: the versioned profile of a user."""

    @c.operation("refresh_user_narrative")
    def refresh(self, user_id: Id, *, wait: bool = False) -> Job:
        path = f"/v1/users/{c.path_id(user_id)}/narrative"
        return self._client.call(Job, "POST", path, params={"wait": wait})

    @c.operation("get_user_narrative")
    def get(self, user_id: Id) -> Narrative:
        return self._client.call(Narrative, "GET", f"/v1/users/{c.path_id(user_id)}/narrative")

    @c.operation("list_user_narratives")
    def list(self, user_id: Id, filters: NarrativeFilters | None = None, /, **fields: Fields) -> Pager[Narrative]:
        """Every version, newest first. ``fields``: cursor, limit."""
        path = f"/v1/users/{c.path_id(user_id)}/narratives"
        return Pager(self._client, path, Narrative, c.filters(NarrativeFilters, filters, fields))
