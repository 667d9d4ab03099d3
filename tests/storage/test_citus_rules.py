"""The schema keeps the rules Citus imposes on a table distributed by ``org_id`` (ARCHITECTURE.md, 2), read
from the live migrated catalog, so a table added by a later migration is checked the day it appears.

Every table in ``public`` is a tenant table except the few in ``GLOBAL``. For each tenant table:

* ``org_id`` is ``uuid NOT NULL`` (Citus co-locates tables whose distribution columns have one type, and
  places a row by that value: it cannot be missing);
* ``org_id`` is the first column of the primary key, and a key column of every unique index and
  constraint (Citus enforces uniqueness inside a shard only, so it must include the distribution column),
  partial and expression indexes included; an exclusion constraint compares ``org_id`` with ``=``;
* every foreign key points at another tenant table and maps ``org_id`` to ``org_id`` (co-located); none
  joins a tenant table and a table that stays local to the coordinator (``GLOBAL``, other schemas);
* row-level security is on, with the ``tenant_isolation`` policy on ``org_id`` as the only permissive one;
* no trigger (Citus runs none on distributed tables) and no identity or sequence column but ``bigint``
  (Citus refuses the others on distributed tables).

What the catalog cannot show, that no query joins two organizations' rows, is kept by the repositories
(every query takes its org) and row-level security. docs/scaling.md has the ``create_distributed_table``
calls these rules make possible. ``test_schema_rules.py`` checks the same tenancy from the side of
isolation; this module checks it against Citus, and that the check itself catches each kind of breach.
"""

from __future__ import annotations

import psycopg
import pytest

# Tables that are not an organization's: they stay local to the coordinator (or become reference tables).
GLOBAL = {
    "alembic_version": "Alembic's record of the schema revision: one row, written by migrations only",
}
ISOLATION = "(org_id = engram_current_org())"


def _tenant_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        """SELECT c.relname FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           ORDER BY 1"""
    ).fetchall()
    return [r[0] for r in rows if r[0] not in GLOBAL]


def _column(conn: psycopg.Connection, table: str) -> list[str]:
    row = conn.execute(
        """SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a
           WHERE a.attrelid = to_regclass(%s) AND a.attname = 'org_id' AND NOT a.attisdropped""",
        (f"public.{table}",),
    ).fetchone()
    if row is None:
        return [f"{table}: no org_id column"]
    return (
        [] if row == ("uuid", True) else [f"{table}: org_id is {row[0]}{'' if row[1] else ' NULL'}, not uuid NOT NULL"]
    )


def _keys(conn: psycopg.Connection, table: str) -> list[str]:
    problems = []
    rows = conn.execute(
        """SELECT i.indexrelid::regclass::text, i.indisprimary, i.indisexclusion,
                  ARRAY(SELECT coalesce(a.attname, '(expression)')
                        FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                        WHERE k.n <= i.indnkeyatts ORDER BY k.n),
                  ARRAY(SELECT o.oprname FROM pg_constraint con, unnest(con.conexclop) AS x(op)
                        JOIN pg_operator o ON o.oid = x.op WHERE con.conindid = i.indexrelid)
           FROM pg_index i WHERE i.indrelid = to_regclass(%s) AND (i.indisunique OR i.indisexclusion)""",
        (f"public.{table}",),
    ).fetchall()
    if not any(primary for _, primary, *_ in rows):
        problems.append(f"{table}: no primary key")
    for name, primary, exclusion, columns, operators in rows:
        if primary and columns[:1] != ["org_id"]:
            problems.append(f"{table}: primary key {name} {columns} does not start with org_id")
        elif "org_id" not in columns:
            problems.append(f"{table}: unique index {name} {columns} does not include org_id")
        elif exclusion and operators[columns.index("org_id")] != "=":
            problems.append(f"{table}: exclusion constraint {name} does not compare org_id with =")
    return problems


def _foreign_keys(conn: psycopg.Connection, tenant: set[str]) -> list[str]:
    problems = []
    rows = conn.execute(
        """SELECT con.conname, con.conrelid::regclass::text, con.confrelid::regclass::text,
                  ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
                        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.n),
                  ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n)
                        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.n)
           FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
           WHERE con.contype = 'f' AND NOT c.relispartition AND con.conparentid = 0"""
    ).fetchall()
    for name, source, target, columns, referenced in rows:
        if source not in tenant and target not in tenant:
            continue  # between tables that stay local (procrastinate's own)
        if source not in tenant or target not in tenant:
            problems.append(f"{source}.{name}: joins a tenant table and a local one ({source} → {target})")
        elif "org_id" not in columns or referenced[columns.index("org_id")] != "org_id":
            problems.append(f"{source}.{name}: {columns} → {target}{referenced} does not map org_id to org_id")
    return problems


def _isolation(conn: psycopg.Connection, table: str) -> list[str]:
    problems = []
    row = conn.execute("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(%s)", (f"public.{table}",))
    if row.fetchone() != (True,):
        problems.append(f"{table}: row-level security is off")
    policies = conn.execute(
        "SELECT policyname, qual, with_check FROM pg_policies"
        " WHERE schemaname = 'public' AND tablename = %s AND permissive = 'PERMISSIVE'",
        (table,),
    ).fetchall()
    if ("tenant_isolation", ISOLATION, ISOLATION) not in policies:
        problems.append(f"{table}: no tenant_isolation policy USING and WITH CHECK {ISOLATION}")
    problems += [
        f"{table}: permissive policy {p[0]} widens tenant_isolation" for p in policies if p[0] != "tenant_isolation"
    ]
    return problems


def _unsupported(conn: psycopg.Connection, table: str) -> list[str]:
    triggers = conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal", (f"public.{table}",)
    ).fetchall()
    problems = [f"{table}: trigger {t[0]} (Citus runs no trigger on a distributed table)" for t in triggers]
    counters = conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
             AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%')""",
        (f"public.{table}",),
    ).fetchall()
    problems += [
        f"{table}.{name}: a {type_} counter (Citus takes bigint only)" for name, type_ in counters if type_ != "bigint"
    ]
    return problems


def citus_problems(conn: psycopg.Connection) -> list[str]:
    """Every breach of the rules above in the database ``conn`` is connected to."""
    tables = _tenant_tables(conn)
    problems: list[str] = []
    for table in tables:
        problems += _column(conn, table) + _keys(conn, table) + _isolation(conn, table) + _unsupported(conn, table)
    return problems + _foreign_keys(conn, set(tables))


def test_the_migrated_schema_can_be_distributed_by_org_id(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = _tenant_tables(conn)
        problems = citus_problems(conn)
    assert {"organization", "memory", "message", "document", "chunk", "job"} <= set(tables)
    assert not problems, "the schema breaks rules Citus imposes:\n" + "\n".join(problems)


def test_every_global_table_exists_and_says_why_it_is_global(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for table, why in GLOBAL.items():
            assert conn.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone() != (None,), table
            assert len(why) > 20


def test_the_check_catches_each_kind_of_breach(database_url: str) -> None:
    """A table that breaks every rule, made and rolled back in one transaction: each breach is named."""
    with psycopg.connect(database_url) as conn:
        with pytest.raises(_RolledBack), conn.transaction():
            conn.execute(
                """CREATE TABLE careless (
                     id bigint GENERATED ALWAYS AS IDENTITY, org_id text, version text, n integer,
                     name text UNIQUE, PRIMARY KEY (id, org_id));
                   CREATE SEQUENCE careless_seq AS integer;
                   ALTER TABLE careless ALTER COLUMN n SET DEFAULT nextval('careless_seq');
                   CREATE UNIQUE INDEX ux_careless_lower ON careless (lower(name)) WHERE version IS NULL;
                   ALTER TABLE careless ADD CONSTRAINT fk_careless_version FOREIGN KEY (version)
                     REFERENCES alembic_version (version_num);
                   ALTER TABLE memory_entity ADD CONSTRAINT fk_loose FOREIGN KEY (org_id, memory_id)
                     REFERENCES memory (id, org_id) NOT VALID;
                   ALTER TABLE careless ENABLE ROW LEVEL SECURITY;
                   CREATE POLICY everyone ON careless USING (true);
                   CREATE FUNCTION careless_touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
                   CREATE TRIGGER touch BEFORE UPDATE ON careless FOR EACH ROW EXECUTE FUNCTION careless_touch();"""
            )
            found = "\n".join(citus_problems(conn))
            raise _RolledBack
    for expected in (
        "careless: org_id is text, not uuid NOT NULL",
        "careless: primary key careless_pkey ['id', 'org_id'] does not start with org_id",
        "careless: unique index careless_name_key ['name'] does not include org_id",
        "careless: unique index ux_careless_lower ['(expression)'] does not include org_id",
        "careless.fk_careless_version: joins a tenant table and a local one",
        "memory_entity.fk_loose: ['org_id', 'memory_id'] → memory['id', 'org_id'] does not map org_id to org_id",
        "careless: no tenant_isolation policy",
        "careless: permissive policy everyone widens tenant_isolation",
        "careless: trigger touch",
        "careless.n: a integer counter",
    ):
        assert expected in found, f"{expected!r} not reported in:\n{found}"


class _RolledBack(Exception):
    """Raised to leave the transaction that built the careless table."""
