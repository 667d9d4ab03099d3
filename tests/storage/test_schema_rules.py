"""The schema keeps the architecture's rules: read from the catalog, so new tables are checked too."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy.dialects import postgresql

from engramdb.storage import tables
from tests.conftest import Org

EXEMPT = {"alembic_version"}


def _tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"""
    ).fetchall()
    return sorted(r[0] for r in rows if r[0] not in EXEMPT)


def _constraint_columns(
    conn: psycopg.Connection, table: str, kinds: str
) -> list[tuple[str, str, list[str], list[str]]]:
    rows = conn.execute(
        """SELECT con.conname, con.contype,
                  ARRAY(SELECT a.attname FROM unnest(con.conkey) k JOIN pg_attribute a
                        ON a.attrelid = con.conrelid AND a.attnum = k),
                  ARRAY(SELECT a.attname FROM unnest(coalesce(con.confkey, '{}')) k JOIN pg_attribute a
                        ON a.attrelid = con.confrelid AND a.attnum = k)
           FROM pg_constraint con WHERE con.conrelid = %s::regclass AND con.contype = ANY(%s)""",
        (table, list(kinds)),
    ).fetchall()
    return [(r[0], r[1], list(r[2]), list(r[3])) for r in rows]


def test_every_table_is_tenant_scoped(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        names = _tables(conn)
        assert {"organization", "session", "message", "memory", "audit_log"} <= set(names)
        for table in names:
            columns = {
                r[0]
                for r in conn.execute(
                    "SELECT attname FROM pg_attribute"
                    " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    (table,),
                ).fetchall()
            }
            assert "org_id" in columns, f"{table} has no org_id"
            constraints = _constraint_columns(conn, table, "puf")
            assert any(c[1] == "p" for c in constraints), f"{table} has no primary key"
            for name, kind, cols, ref_cols in constraints:
                assert "org_id" in cols, f"{table}.{name} ({kind}) does not include org_id: {cols}"
                if kind == "f":
                    assert ref_cols[cols.index("org_id")] == "org_id", f"{table}.{name} maps org_id elsewhere"
            # Unique indexes made outside constraints count too.
            for (indexdef,) in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE 'CREATE UNIQUE%%'", (table,)
            ).fetchall():
                assert "org_id" in indexdef, f"{table}: unique index without org_id: {indexdef}"
            rls = conn.execute("SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()
            assert rls and rls[0], f"{table} does not have row-level security enabled"
            policies = conn.execute("SELECT qual FROM pg_policies WHERE tablename = %s", (table,)).fetchall()
            assert policies and all("engram_current_org()" in p[0] for p in policies), f"{table} policy"


def test_app_role_cannot_bypass_rls(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'engram_app'").fetchone()
    assert row == (False, False)


# SQLAlchemy's spelling (lower-cased) → PostgreSQL's (``format_type``), where they differ.
TYPE_SYNONYMS = {
    "float": "double precision",  # SQLAlchemy's Float() without a precision: float8
    "double": "double precision",
    "varchar": "character varying",
    "char": "character",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "decimal": "numeric",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "time": "time without time zone",
}


def _normal_type(text: str) -> str:
    """One spelling per type, so SQLAlchemy's compiled DDL and ``format_type`` compare equal: lower case,
    single spaces, PostgreSQL's own name for an alias (``FLOAT`` is ``double precision``, ``FLOAT(24)`` is
    ``real``, ``VARCHAR(n)`` is ``character varying(n)``), array brackets and modifiers kept (``text[]``,
    ``vector(384)``)."""
    spelled = " ".join(text.lower().split())
    brackets = ""
    while spelled.endswith("[]"):
        spelled, brackets = spelled[:-2].rstrip(), brackets + "[]"
    base, _, modifier = spelled.partition("(")
    base, modifier = base.strip(), f"({modifier.replace(' ', '')}" if modifier else ""
    if base == "float" and modifier:  # float(p): real up to 24 bits of precision, double precision above
        base, modifier = ("real" if int(modifier.strip("()")) <= 24 else "double precision"), ""
    return TYPE_SYNONYMS.get(base, base) + modifier + brackets


def test_type_spellings_are_normalised() -> None:
    same = [
        ("TIMESTAMP WITH TIME ZONE", "timestamp with time zone"),
        ("VARCHAR(20)", "character varying(20)"),
        ("FLOAT", "double precision"),
        ("FLOAT(24)", "real"),
        ("TEXT[]", "text[]"),
        ("VECTOR(384)", "vector(384)"),
        ("vector[]", "vector[]"),
    ]
    for sqlalchemy_spelling, postgres_spelling in same:
        assert _normal_type(sqlalchemy_spelling) == _normal_type(postgres_spelling)
    assert _normal_type("vector(384)") != _normal_type("vector")


def _migrated_columns(conn: psycopg.Connection) -> dict[str, dict[str, tuple[str, bool]]]:
    """Every column of every table of the migrated database: name → (type, nullable). A partitioned table
    is read through its parent (the partitions have the parent's columns); alembic's own table is left out."""
    rows = conn.execute(
        """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"""
    ).fetchall()
    found: dict[str, dict[str, tuple[str, bool]]] = {}
    for table, column, type_, nullable in rows:
        if table not in EXEMPT:
            found.setdefault(table, {})[column] = (_normal_type(type_), nullable)
    return found


def _described_columns() -> dict[str, dict[str, tuple[str, bool]]]:
    """The same, from ``storage/tables.py``: each type compiled as PostgreSQL DDL."""
    dialect = postgresql.dialect()
    return {
        table.name: {
            column.name: (
                _normal_type(column.type.compile(dialect=dialect)),
                bool(column.nullable) and not column.primary_key,
            )
            for column in table.columns
        }
        for table in tables.metadata.sorted_tables
    }


def _compare(
    migrated: dict[str, dict[str, tuple[str, bool]]], described: dict[str, dict[str, tuple[str, bool]]], field: int
) -> list[str]:
    problems = [
        f"table {name}: in the migrated database, not in tables.py"
        for name in sorted(migrated.keys() - described.keys())
    ]
    problems += [
        f"table {name}: in tables.py, not in the migrated database"
        for name in sorted(described.keys() - migrated.keys())
    ]
    for name in sorted(migrated.keys() & described.keys()):
        db_columns, code_columns = migrated[name], described[name]
        problems += [
            f"{name}.{c}: in the migrated database, not in tables.py"
            for c in sorted(db_columns.keys() - code_columns.keys())
        ]
        problems += [
            f"{name}.{c}: in tables.py, not in the migrated database"
            for c in sorted(code_columns.keys() - db_columns.keys())
        ]
        for column in sorted(db_columns.keys() & code_columns.keys()):
            in_db, in_code = db_columns[column][field], code_columns[column][field]
            if in_db != in_code:
                what = "type" if field == 0 else "nullable"
                problems.append(f"{name}.{column}: {what} is {in_db!r} in the database, {in_code!r} in tables.py")
    return problems


def test_core_tables_match_the_migrated_schema(database_url: str) -> None:
    """``storage/tables.py`` and the migrations describe the same tables, both ways: every table and column
    of a freshly migrated database is in tables.py and every one there is in the database, with the same
    type (CONVENTIONS.md, example 7)."""
    with psycopg.connect(database_url) as conn:
        migrated = _migrated_columns(conn)
    problems = _compare(migrated, _described_columns(), field=0)
    assert not problems, "tables.py and the migrations disagree:\n" + "\n".join(problems)


def test_core_tables_match_the_migrated_nullability(database_url: str) -> None:
    """Where a column is in both, tables.py says whether it may be NULL as the database does (a primary-key
    column counts as NOT NULL whatever tables.py says: PostgreSQL makes it so). Kept apart from the test
    above so that a missing column or a wrong type is not buried under nullability differences."""
    with psycopg.connect(database_url) as conn:
        migrated = _migrated_columns(conn)
    described = _described_columns()
    both = {name: migrated[name] for name in migrated.keys() & described.keys()}
    problems = _compare(both, {name: described[name] for name in both}, field=1)
    assert not problems, "tables.py and the migrations disagree on NULL:\n" + "\n".join(problems)


async def test_rls_hides_other_orgs_even_without_a_filter(make_org, database_url: str) -> None:  # type: ignore[no-untyped-def]
    a: Org = await make_org()
    b: Org = await make_org()
    await a.client.post("/v1/memories", json={"content": "a's"})
    await b.client.post("/v1/memories", json={"content": "b's"})
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE engram_app")
        assert conn.execute("SELECT count(*) FROM memory").fetchone() == (0,)  # no org set: nothing
        conn.execute("SELECT set_config('engram.org_id', %s, false)", (str(a.id),))
        contents = [r[0] for r in conn.execute("SELECT content FROM memory").fetchall()]
        assert contents == ["a's"]
        assert conn.execute("SELECT count(*) FROM organization").fetchone() == (1,)
        with pytest.raises(pg_errors.InsufficientPrivilege):
            conn.execute("INSERT INTO team (org_id, id, name) VALUES (%s, %s, 'smuggled')", (b.id, uuid.uuid4()))


def test_time_partitions_exist(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        parts = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent IN ('message'::regclass, 'audit_log'::regclass)"
            ).fetchall()
        }
    assert {"message_default", "audit_log_default"} <= parts
    assert sum(p.startswith("message_p") for p in parts) >= 4


def test_app_role_has_no_rights_on_partitions(database_url: str) -> None:
    """RLS applies through the parent only, so the tenant role must not reach a partition directly."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE has_table_privilege('engram_app', c.oid, 'SELECT, INSERT, UPDATE, DELETE')"""
        ).fetchall()
    assert rows == []


def test_full_text_match_can_use_its_index_under_rls(database_url: str) -> None:
    """Row-level security keeps quals that are not leakproof out of index scans; the migration (run by
    a superuser here, as with the embedded server) declares the full-text match leakproof, so a keyword
    search in a large organization can use the GIN index."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq(tsvector,tsquery)'::regprocedure"
        ).fetchone()
    assert row == (True,)
