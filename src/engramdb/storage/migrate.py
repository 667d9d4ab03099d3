"""Apply the migrations shipped inside the package, then make sure the time partitions exist."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text

from engramdb.errors import ConfigurationError, ServiceUnavailable
from engramdb.storage.database import Database, sqlalchemy_url
from engramdb.storage.partitions import ensure_partitions
from engramdb.storage.vectors import ensure_vector_indexes

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIN_PGVECTOR = (0, 6)
MIN_POSTGRES = 140000


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d_%%(slug)s")
    cfg.attributes["engram_url"] = url
    return cfg


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_state(url: str) -> SchemaState:
    script = ScriptDirectory.from_config(alembic_config(url))
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    head = script.get_current_head()
    assert head is not None
    return SchemaState(current=current, head=head)


@functools.cache
def head_revision() -> str:
    """The revision the migrations shipped with this version end at."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


async def check_ready(db: Database) -> str:
    """The schema's revision when the database answers and is migrated to :func:`head_revision`; else
    :class:`ServiceUnavailable` saying which (readiness: a server should get no traffic until both)."""
    async with db.system() as conn:
        if (await conn.execute(text("SELECT to_regclass('alembic_version')"))).scalar() is None:
            current = None
        else:
            current = (await conn.execute(text("SELECT max(version_num) FROM alembic_version"))).scalar()
    head = head_revision()
    if current != head:
        raise ServiceUnavailable(
            f"the database schema is at revision {current or 'none'}, this version needs {head}: "
            "run `engramdb migrate` (or start the server with ENGRAM_AUTO_MIGRATE=true)"
        )
    return head


def check_server(url: str) -> tuple[str, str]:
    """Check PostgreSQL and pgvector versions; return them, or say exactly what to install."""
    with psycopg.connect(url, autocommit=True) as conn:
        server_num = conn.info.server_version
        if server_num < MIN_POSTGRES:
            raise ConfigurationError(f"PostgreSQL {server_num} is too old: Engram needs PostgreSQL 14 or newer")
        row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        if row is None:
            raise ConfigurationError(
                "the pgvector extension is not installed on this PostgreSQL server. Install it "
                "(Debian/Ubuntu: apt install postgresql-16-pgvector; Docker: the pgvector/pgvector image), "
                "or unset ENGRAM_DATABASE_URL to use the embedded server, which bundles it"
            )
        installed = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        version = str(installed[0] if installed else row[0])
    parts = tuple(int(p) for p in version.split(".")[:2])
    if parts < MIN_PGVECTOR:
        raise ConfigurationError(
            f"pgvector {version} is too old: Engram needs 0.6 or newer (ALTER EXTENSION vector UPDATE)"
        )
    return f"{server_num // 10000}.{server_num % 10000}", version


def migrate(url: str) -> SchemaState:
    """Bring the schema to head (safe to run from several processes at once) and add partitions."""
    check_server(url)
    command.upgrade(alembic_config(url), "head")
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_partitions(conn)
    return schema_state(url)


def prepare_vectors(url: str, model: str, dimensions: int, *, build_memory: str | None = None) -> list[str]:
    """Make sure the HNSW indexes of the configured embedding model exist (see storage/vectors.py).

    ``build_memory`` (e.g. ``"1GB"``) raises ``maintenance_work_mem`` for the build: an HNSW graph that
    does not fit in it builds many times slower."""
    with psycopg.connect(url, autocommit=True) as conn:
        if build_memory:
            conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (build_memory,))
        return ensure_vector_indexes(conn, model, dimensions)


def check_language(url: str, language: str) -> None:
    """Refuse to start with an ENGRAM_SEARCH_LANGUAGE the server has no text-search configuration for."""
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_ts_config WHERE cfgname = %s", (language,)).fetchone()
        if found is None:
            names = [r[0] for r in conn.execute("SELECT cfgname FROM pg_ts_config ORDER BY 1").fetchall()]
            raise ConfigurationError(
                f"ENGRAM_SEARCH_LANGUAGE '{language}' is not a text-search configuration on this server; "
                f"choose one of: {', '.join(names)}"
            )
