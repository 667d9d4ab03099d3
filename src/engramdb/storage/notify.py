"""Postgres ``LISTEN/NOTIFY`` fanned out in process: one listening connection per process, any number of
subscribers.

A notification only wakes subscribers; what they send is read from the tables (rows after the last
``seq`` they sent), so a notification lost while the connection was down loses nothing: the listener
wakes every subscriber when it reconnects, and each looks again. Payloads are ``org:topic:seq``
(:func:`payload`); a subscriber listens to one (org, topic) pair.

The connection is opened on the first subscription and closed by :meth:`Listener.close` (the runtime's).

**Sending after the commit.** ``NOTIFY`` in a writing transaction makes its commit take a lock that every
notifying commit of the cluster takes, held through the commit's WAL flush (PostgreSQL's ``async.c``
keeps the queue in commit order so): writers that notify commit one at a time. :meth:`Listener.announce`
is for busy writers instead: called once the write has committed, it queues the wake-up, and the process
sends what is queued in one transaction of its own, one at a time; what is announced while one is being
sent goes in the next. So a process sends a handful of notifying commits a second however many writes
it makes, and no writer waits for one; the process's own subscribers are woken at once. :func:`notify`
(in the writer's transaction) is for writers that commit one at a time anyway (messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.storage.database import Database, pool_wait

CHANNEL = "engram_agents"
CLOSE_WAIT_S = 5.0  # how long closing waits for announcements still being sent
_SEND = text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:batch AS text[])) AS p")
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
        self._outbox: set[str] = set()  # payloads announced, not yet sent
        self._sender: asyncio.Task[None] | None = None
        self.sent = 0  # notifying transactions sent by announce, for tests and benchmarks

    def announce(self, db: Database, org_id: uuid.UUID, topic: str) -> None:
        """Wake the subscribers of (org, topic) in every process; call it after the write has committed.
        This process's own are woken at once; the others by a notification sent in the background on a
        connection of ``db``'s pool, batched with every other announcement of this process (see above)."""
        self._wake((str(org_id), topic))
        self._outbox.add(payload(org_id, topic, 0))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(db), name="engram-notify")

    async def _send(self, db: Database) -> None:
        # One batch at a time: a write announced while a batch is in flight may have committed after that
        # batch's NOTIFY reached a subscriber, so it goes in the next batch, sent after this one.
        while self._outbox:
            batch, self._outbox = sorted(self._outbox), set()
            try:
                with pool_wait(None):  # background work, even when a request announced it
                    async with db.autocommit() as conn:
                        await conn.execute(_SEND, {"channel": CHANNEL, "batch": batch})
                self.sent += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: subscribers look again at their keep-alive
                _log.warning("could not send %d wake-ups (%s); streams catch up at their keep-alive", len(batch), exc)
                return

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
        """Send what is still announced (for a few seconds at most), then close the LISTEN connection."""
        if self._sender is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._sender), timeout=CLOSE_WAIT_S)
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
            self._sender = None
        if self._task is not None:
            self._task.cancel()
            # Bounded: a connection attempt that ignores its cancellation must not keep the process alive.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=CLOSE_WAIT_S)
            self._task = None
