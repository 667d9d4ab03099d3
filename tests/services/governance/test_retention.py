"""The periodic retention sweep: old log partitions exported and dropped only when every organization with
rows in them lets them go, the rest of the old log rows exported and deleted in batches, and no organization's
rows touched by another's policies (nor a report kept for an organization the sweep left alone)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from engramdb.config import Settings
from engramdb.jobs.worker import sweep_cron
from engramdb.services.governance import retention
from engramdb.storage.partitions import ensure_partitions
from tests.conftest import OrgFactory


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="module")
def settings(database_url: str, archive_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        retention_batch_rows=2,
        archive_dir=archive_dir,
    )


def _audit(conn: psycopg.Connection, org_id: uuid.UUID, when: str, n: int) -> None:
    conn.execute(
        "INSERT INTO audit_log (org_id, id, actor, action, entity_type, created_at) "
        "SELECT %s, gen_random_uuid(), 'test', 'old.thing', 'thing', CAST(%s AS timestamptz) "
        "FROM generate_series(1, %s)",
        (org_id, when, n),
    )


def _partitions(conn: psycopg.Connection, parent: str) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        (parent,),
    ).fetchall()
    return {r[0] for r in rows}


async def test_the_sweep_drops_what_every_organization_lets_go_and_nothing_else(  # type: ignore[no-untyped-def]
    app, make_org: OrgFactory, database_url: str, archive_dir: Path
) -> None:
    rt = app.state.runtime
    keeper, sweeper = await make_org(), await make_org()  # keeper has no policy: it keeps everything
    for target in ("audit_log", "access_log", "memories"):
        body = {"name": target, "target": target, "after_days": 30}
        assert (await sweeper.client.post("/v1/retention/policies", json=body)).status_code == 201
    user = (await keeper.client.post("/v1/users", json={"external_id": "k"})).json()["id"]
    kept = (await keeper.client.post("/v1/memories", json={"user_id": user, "content": "keeper's old note"})).json()
    swept = (await sweeper.client.post("/v1/memories", json={"content": "sweeper's old note"})).json()
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_partitions(conn, now=datetime(2001, 1, 15, tzinfo=UTC))  # 2001-01 … 2001-04
        conn.execute("UPDATE memory SET created_at = '2001-01-05' WHERE id = ANY(%s)", ([kept["id"], swept["id"]],))
        _audit(conn, sweeper.id, "2001-01-10", 3)  # a month only the sweeper has rows in: dropped whole
        _audit(conn, sweeper.id, "2001-02-10", 2)  # a month the keeper keeps rows in: deleted row by row
        _audit(conn, keeper.id, "2001-02-11", 1)
        _audit(conn, sweeper.id, "1999-06-01", 2)  # the default partition: row by row
        conn.execute(
            "INSERT INTO memory_access_log (org_id, id, memory_id, access_type, accessed_at) "
            "SELECT %s, gen_random_uuid(), gen_random_uuid(), 'search', '2001-01-20' FROM generate_series(1, 2)",
            (sweeper.id,),
        )
        before = {p for p in _partitions(conn, "audit_log") if "2001" in p}
    assert before == {"audit_log_p2001_01", "audit_log_p2001_02", "audit_log_p2001_03", "audit_log_p2001_04"}

    assert await retention.sweep(rt) == 7 + 2 + 1  # audit rows, access rows, the sweeper's memory

    with psycopg.connect(database_url) as conn:
        audit_parts, access_parts = _partitions(conn, "audit_log"), _partitions(conn, "memory_access_log")
        message_parts = _partitions(conn, "message")
        left = conn.execute(
            "SELECT org_id, count(*) FROM audit_log WHERE action = 'old.thing' GROUP BY org_id"
        ).fetchall()
        memories = {str(r[0]) for r in conn.execute("SELECT id FROM memory").fetchall()}
        runs = conn.execute("SELECT org_id, trigger, counts, steps FROM retention_run").fetchall()
    assert "audit_log_p2001_01" not in audit_parts and "audit_log_p2001_02" in audit_parts
    assert not {"audit_log_p2001_03", "audit_log_p2001_04"} & audit_parts  # empty and past every cut-off
    assert "memory_access_log_p2001_01" not in access_parts
    assert "message_p2001_01" in message_parts  # no policy on messages
    assert left == [(keeper.id, 1)]
    assert kept["id"] in memories and swept["id"] not in memories

    # The keeper was left alone and keeps no report; the sweeper's one report says what went, and how.
    assert [(r[0], r[1]) for r in runs] == [(sweeper.id, "sweep")]
    counts, steps = runs[0][2], runs[0][3]
    assert counts == {
        "memories": {"deleted": 1},
        "audit_log": {"deleted": 7, "exported": 7, "partitions_dropped": 1},
        "access_log": {"deleted": 2, "exported": 2, "partitions_dropped": 1},
    }
    assert {(s["name"], s["rows"]) for s in steps if s["partitions_dropped"]} == {
        ("partition audit_log_p2001_01", 3),
        ("partition memory_access_log_p2001_01", 2),
    }
    folder = archive_dir / str(sweeper.id)
    whole = (folder / "audit_log" / "audit_log_p2001_01.jsonl").read_text().splitlines()
    assert len(whole) == 3 and json.loads(whole[0])["created_at"].startswith("2001-01-10")
    (by_rows,) = (folder / "audit_log").glob("run-*.jsonl")
    assert len(by_rows.read_text().splitlines()) == 4
    assert len((folder / "access_log" / "memory_access_log_p2001_01.jsonl").read_text().splitlines()) == 2
    assert not (archive_dir / str(keeper.id)).exists()

    assert await retention.sweep(rt) == 0  # nothing left: no new report either
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM retention_run").fetchone() == (1,)


def test_sweep_intervals() -> None:
    assert [sweep_cron(m) for m in (1, 10, 60, 180, 1440)] == [
        "*/1 * * * *",
        "*/10 * * * *",
        "0 */1 * * *",
        "0 */3 * * *",
        "0 0 * * *",
    ]
    for wrong in (90, 420, 1441, -1):
        with pytest.raises(ValueError, match="RETENTION_SWEEP_MINUTES|less than or equal|greater than or equal"):
            Settings(retention_sweep_minutes=wrong)
