"""The schema keeps the architecture's rules: read from the catalog, so new tables are checked too."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors as pg_errors

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


def test_core_tables_match_the_migrated_schema(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for table in tables.metadata.sorted_tables:
            columns = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table.name,)
                ).fetchall()
            }
            missing = {c.name for c in table.columns} - columns
            assert not missing, f"{table.name}: {missing} described in tables.py but not in the database"


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
