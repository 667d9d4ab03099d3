"""The embedded PostgreSQL (PyPI ``pgserver``: PostgreSQL 16 with pgvector) used when no URL is set.

``pgserver`` keeps one server per data directory and counts the processes using it under a file lock,
so the API server, workers and CLI commands on one machine share it safely; the last one to exit stops it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from engramdb.errors import ConfigurationError

_log = logging.getLogger(__name__)
_servers: dict[Path, Any] = {}


def start_embedded(data_dir: Path, database: str) -> str:
    """Start (or join) the embedded server under ``data_dir`` and return a URL for ``database``."""
    import psycopg
    from psycopg import errors as pg_errors

    pgdata = (data_dir / "pgdata").expanduser().resolve()
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the data directory {pgdata.parent}: {exc}. Set ENGRAM_DATA_DIR to a writable folder."
        ) from exc
    server = _servers.get(pgdata)
    if server is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver

            try:
                server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
            except Exception as exc:
                raise ConfigurationError(
                    f"the embedded PostgreSQL in {pgdata} did not start ({exc}); see {pgdata / 'log'} "
                    "or set ENGRAM_DATABASE_URL to use your own server"
                ) from exc
        _servers[pgdata] = server
    admin_uri: str = server.get_uri("postgres")
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            try:
                conn.execute(f'CREATE DATABASE "{database}"')
                _log.info("created database %s in the embedded server", database)
            except pg_errors.DuplicateDatabase:
                pass  # another process created it first
    uri: str = server.get_uri(database)
    return uri
