"""Postgres ``LISTEN/NOTIFY`` fanned out in process: one listening connection per process, any number of
subscribers.

A notification only wakes subscribers; what they send is read from the tables (rows after the last
``seq`` they sent), so a notification lost while the connection was down loses nothing: the listener
wakes every subscriber when it reconnects, and each looks again. Payloads are ``org:topic:seq``
(:func:`payload`); a subscriber listens to one (org, topic) pair.

The connection is opened on the first subscription and closed by :meth:`Listener.close` (the runtime's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

CHANNEL = "engram_agents"
_log = logging.getLogger(__name__)
Key = tuple[str, str]  # (org id, topic)


def payload(org_id: uuid.UUID, topic: str, seq: int) -> str:
    return f"{org_id}:{topic}:{seq}"


async def notify(conn: AsyncConnection, org_id: uuid.UUID, topic: str, seq: int) -> None:
    """Queue a notification in ``conn``'s transaction (sent when it commits, not at all if it rolls back)."""
    await conn.execute(select(func.pg_notify(CHANNEL, payload(org_id, topic, seq))))


class Listener:
    """The process's one ``LISTEN`` connection and the events of the subscribers it wakes."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._subscribers: dict[Key, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.notifications = 0  # received, for tests and metrics

    @asynccontextmanager
    async def subscribe(self, org_id: uuid.UUID, topic: str) -> AsyncIterator[asyncio.Event]:
        """An event set whenever (org, topic) is notified (or the listener reconnects); clear it before
        reading the table, so a notification that arrives during the read is not missed."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="engram-listen")
        key = (str(org_id), topic)
        event = asyncio.Event()
        self._subscribers.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._subscribers.get(key)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._subscribers[key]

    def _wake(self, key: Key | None) -> None:
        groups = self._subscribers.values() if key is None else [self._subscribers.get(key, set())]
        for group in list(groups):
            for event in list(group):
                event.set()

    async def _run(self) -> None:
        wait = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self._wake(None)  # anything sent while not listening is in the tables: look again
                    wait = 0.5
                    async for note in conn.notifies():
                        self.notifications += 1
                        org, _, rest = note.payload.partition(":")
                        topic = rest.partition(":")[0]
                        self._wake((org, topic))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: subscribers poll meanwhile
                _log.warning("the LISTEN connection failed (%s); reconnecting in %.1f s", exc, wait)
            self.connected.clear()
            await asyncio.sleep(wait)
            wait = min(wait * 2, 30.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
