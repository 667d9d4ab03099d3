# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""Sessions and their messages: ``client.sessions``, ``client.sessions.messages``, ``client.messages``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from engramdb.schemas.conversations import (
    Message,
    MessageBatch,
    MessageFilters,
    MessagesAdded,
    Session,
    SessionCreate,
    SessionFilters,
    SessionUpdate,
)
from engramdb.schemas.erasure import ErasureReceipt
from engramdb.sdk import _common as c
from engramdb.sdk._common import Id
from engramdb.sdk._sync.pager import Pager
from engramdb.sdk._sync.resources.base import Fields, Resource

if TYPE_CHECKING:
    from engramdb.sdk._sync.http import HTTP


class SessionMessages(Resource):
    """``client.sessions.messages``: a session's message log."""

    @c.operation("add_messages")
    def add(
        self,
        session_id: Id,
        messages: MessageBatch | Iterable[Mapping[str, Any]] | None = None,
        /,
        *,
        wait: bool = False,
        **fields: Fields,
    ) -> MessagesAdded:
        """Append messages (dicts with role, content, optional occurred_at, name, metadata, tags …).
        ``wait=True`` returns once their extraction job has finished (at most 60 s)."""
        given: Any = messages
        if messages is not None and not isinstance(messages, MessageBatch):
            given, fields = None, {**fields, "messages": list(messages)}
        sent = c.body(MessageBatch, given, fields)
        path = f"/v1/sessions/{c.path_id(session_id)}/messages"
        return self._client.call(MessagesAdded, "POST", path, json=sent, params={"wait": wait})

    @c.operation("list_messages")
    def list(self, session_id: Id, filters: MessageFilters | None = None, /, **fields: Fields) -> Pager[Message]:
        """In time order. ``fields``: those of ``MessageFilters`` (role, tags_any, tags_all, occurred_after,
        occurred_before, metadata, order ``"asc"``/``"desc"``, cursor, limit)."""
        params = c.filters(MessageFilters, filters, fields)
        return Pager(self._client, f"/v1/sessions/{c.path_id(session_id)}/messages", Message, params)


class Sessions(Resource):
    def __init__(self, client: HTTP) -> None:
        super().__init__(client)
        self.messages = SessionMessages(client)

    @c.operation("create_session")
    def create(self, session: SessionCreate | None = None, /, **fields: Fields) -> Session:
        sent = c.body(SessionCreate, session, fields)
        return self._client.call(Session, "POST", "/v1/sessions", json=sent)

    @c.operation("list_sessions")
    def list(self, filters: SessionFilters | None = None, /, **fields: Fields) -> Pager[Session]:
        """Newest first. ``fields``: those of ``SessionFilters`` (user_id, external_user_id, agent_id, app_id,
        status, tags_any, metadata: sessions whose metadata contains this object, cursor, limit)."""
        return Pager(self._client, "/v1/sessions", Session, c.filters(SessionFilters, filters, fields))

    @c.operation("get_session")
    def get(self, session_id: Id) -> Session:
        return self._client.call(Session, "GET", f"/v1/sessions/{c.path_id(session_id)}")

    @c.operation("update_session")
    def update(self, session_id: Id, change: SessionUpdate | None = None, /, **fields: Fields) -> Session:
        sent = c.body(SessionUpdate, change, fields)
        return self._client.call(Session, "PATCH", f"/v1/sessions/{c.path_id(session_id)}", json=sent)

    @c.operation("delete_session")
    def delete(self, session_id: Id) -> None:
        self._client.request("DELETE", f"/v1/sessions/{c.path_id(session_id)}")

    @c.operation("erase_session")
    def erase(self, session_id: Id) -> ErasureReceipt:
        """Erase the session for good with its messages and the memories and facts drawn from it (``delete``
        keeps those); the answer is the erasure's receipt: keep it."""
        return self._client.call(ErasureReceipt, "POST", f"/v1/sessions/{c.path_id(session_id)}/erase")

    @c.operation("close_session")
    def close(self, session_id: Id) -> Session:
        path = f"/v1/sessions/{c.path_id(session_id)}/close"
        return self._client.call(Session, "POST", path, idempotent=True)


class Messages(Resource):
    @c.operation("get_message")
    def get(self, message_id: Id) -> Message:
        return self._client.call(Message, "GET", f"/v1/messages/{c.path_id(message_id)}")
