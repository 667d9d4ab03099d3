"""Organizations that outgrow the shared vector index get their own (see ``storage/vectors.py``).

The server checks every ``ENGRAM_ORG_INDEX_CHECK_S`` seconds; one process at a time builds (an advisory
lock), without blocking writes. Searches need no bookkeeping: the index path names the organization as
a literal, so the planner picks the organization's own index whenever it exists.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from engramdb.services.core.runtime import Runtime
from engramdb.storage.vectors import EMBEDDED_TABLES, ensure_org_index, large_orgs

_log = logging.getLogger(__name__)
_BUILD_LOCK = (0x696E6478, 0)  # advisory lock (namespace, key): one builder across processes


def ensure_org_indexes(url: str, model: str, dimensions: int, *, rows: int, build_memory: str) -> list[str]:
    """Build the missing per-organization indexes; ``table:org`` of each one built. Blocking."""
    built: list[str] = []
    if rows <= 0:
        return built
    with psycopg.connect(url, autocommit=True) as conn:
        locked = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", _BUILD_LOCK).fetchone()
        if not locked or not locked[0]:
            return built  # another process is building
        try:
            conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (build_memory,))
            for table in EMBEDDED_TABLES:
                for org_id in large_orgs(conn, table, model, rows):
                    if ensure_org_index(conn, table, model, dimensions, org_id):
                        built.append(f"{table}:{org_id}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", _BUILD_LOCK)
    return built


async def run(rt: Runtime) -> None:
    """The server's background loop."""
    s = rt.settings
    while True:
        try:
            built = await asyncio.to_thread(
                ensure_org_indexes,
                rt.db.url,
                rt.embedder.model,
                rt.embedder.dimensions,
                rows=s.org_index_rows,
                build_memory=s.index_build_memory,
            )
            for name in built:
                _log.info("built a dedicated vector index for %s", name)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep serving: searches still work through the shared index
            _log.exception("building per-organization vector indexes failed; will retry")
        await asyncio.sleep(s.org_index_check_s)
