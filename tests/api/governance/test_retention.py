"""Retention through the API: policies validated as written, runs that archive and delete exactly what a policy
names (rows a minute inside and outside the cut-off, narrowing by user, type and app, ``keep_latest``, the idle
basis), dry runs that count what the real run then does, legal holds that suspend deletion, expired memories
and sessions gone from context, narratives, search and every index, and another organization's policies,
runs and holds out of reach. Rows are aged in the database directly (as time would)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from engramdb.config import Settings
from tests.conftest import Org, OrgFactory, assert_problem, client_for

DAY = 86_400


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="module")
def settings(database_url: str, archive_dir: Path) -> Settings:
    # Batches of 2 rows, so a run of a few rows takes several batches; webhooks may go to 127.0.0.1 (no
    # worker runs here: deliveries are only written).
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        retention_batch_rows=2,
        archive_dir=archive_dir,
        webhook_allow_networks=["127.0.0.1/32"],
    )


@pytest.fixture
def sql(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def age(sql: psycopg.Connection, table: str, ids: list[Any], seconds: float, column: str = "created_at") -> None:
    """Make rows ``seconds`` old (by ``column``)."""
    sql.execute(
        f"UPDATE {table} SET {column} = now() - make_interval(secs => %s) WHERE id = ANY(%s)",
        (seconds, [str(i) for i in ids]),
    )


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


async def memory(c: httpx.AsyncClient, user_id: str, content: str, **fields: Any) -> str:
    body = await ok(await c.post("/v1/memories", json={"user_id": user_id, "content": content, **fields}), 201)
    return str(body["id"])


async def user(c: httpx.AsyncClient, name: str) -> str:
    return str((await ok(await c.post("/v1/users", json={"external_id": name}), 201))["id"])


async def policy(c: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": f"p-{uuid.uuid4().hex[:6]}", **fields}
    found: dict[str, Any] = await ok(await c.post("/v1/retention/policies", json=body), 201)
    return found


async def run(c: httpx.AsyncClient, policy_id: str | None = None, *, dry: bool) -> dict[str, Any]:
    path = f"/v1/retention/policies/{policy_id}/run" if policy_id else "/v1/retention/run"
    found: dict[str, Any] = await ok(await c.post(path, params={"dry_run": str(dry).lower()}))
    return found


def present(sql: psycopg.Connection, table: str, ids: list[str]) -> set[str]:
    rows = sql.execute(f"SELECT id FROM {table} WHERE id = ANY(%s)", (ids,)).fetchall()
    return {str(r[0]) for r in rows}


async def test_policies_are_checked_as_written(make_org: OrgFactory, app) -> None:  # type: ignore[no-untyped-def]
    org = await make_org()
    c = org.client
    base = {"name": "x", "target": "messages", "after_days": 30}
    for wrong, field in (
        ({"basis": "idle"}, "basis"),  # messages keep no last use
        ({"action": "archive"}, "action"),  # only memories can be archived
        ({"memory_type": "episodic"}, "memory_type"),
        ({"target": "audit_log", "user_id": str(uuid.uuid4())}, "user_id"),
        ({"target": "jobs", "keep_latest": 3}, "keep_latest"),
        ({"target": "memories", "action": "archive", "state": "archived"}, "state"),
        ({"after_days": -1}, "after_days"),
        ({"colour": "red"}, "colour"),  # an unknown field is refused by name
    ):
        body = assert_problem(await c.post("/v1/retention/policies", json={**base, **wrong}), 422)
        assert field in str(body), (wrong, body)
    made = await policy(c, target="memories", after_days=30)
    assert made["action"] == "delete" and made["basis"] == "age" and made["enabled"] is True
    path = f"/v1/retention/policies/{made['id']}"
    assert_problem(await c.patch(path, json={"action": "archive", "state": "deleted"}), 422)
    assert_problem(await c.patch(path, json={"after_days": None}), 422)
    assert_problem(await c.patch(path, json={"target": "messages"}), 422)  # a target does not change
    assert_problem(await c.post("/v1/retention/policies", json={**base, "name": made["name"]}), 409)
    assert_problem(await c.post("/v1/retention/policies", json={**base, "team_id": str(uuid.uuid4())}), 404)
    changed = await ok(await c.patch(path, json={"basis": "idle", "keep_latest": 5, "enabled": False}))
    assert (changed["basis"], changed["keep_latest"], changed["enabled"]) == ("idle", 5, False)
    assert_problem(await c.post(f"{path}/run", params={"dry_run": "true", "verbose": "1"}), 422)
    key = await ok(await c.post("/v1/keys", json={"name": "rw", "scopes": ["read", "write"]}), 201)
    async with client_for(app, key["api_key"]) as writer:
        assert_problem(await writer.get("/v1/retention/policies"), 403)
        assert_problem(await writer.post("/v1/legal-holds", json={"reason": "case 1"}), 403)
    await ok(await c.delete(path), 204)
    assert_problem(await c.get(path), 404)


async def test_another_organizations_policies_runs_and_holds_are_404(make_org: OrgFactory) -> None:
    mine, theirs = await make_org(), await make_org()
    made = await policy(theirs.client, target="memories", after_days=30)
    report = await run(theirs.client, made["id"], dry=True)
    hold = await ok(await theirs.client.post("/v1/legal-holds", json={"reason": "litigation"}), 201)
    c = mine.client
    pid, rid, hid = made["id"], report["id"], hold["id"]
    for method, path in (
        ("GET", f"/v1/retention/policies/{pid}"),
        ("PATCH", f"/v1/retention/policies/{pid}"),
        ("DELETE", f"/v1/retention/policies/{pid}"),
        ("POST", f"/v1/retention/policies/{pid}/run"),
        ("GET", f"/v1/retention/runs/{rid}"),
        ("GET", f"/v1/legal-holds/{hid}"),
        ("PATCH", f"/v1/legal-holds/{hid}"),
        ("POST", f"/v1/legal-holds/{hid}/release"),
        ("DELETE", f"/v1/legal-holds/{hid}"),
    ):
        body = {"enabled": False} if method == "PATCH" and "polic" in path else {"reason": "x"}
        sent = await c.request(method, path, json=body if method == "PATCH" else None)
        assert_problem(sent, 404)
    assert (await ok(await c.get("/v1/retention/policies")))["data"] == []
    assert (await ok(await c.get("/v1/retention/runs")))["data"] == []
    assert (await ok(await c.get("/v1/legal-holds")))["data"] == []
    assert (await ok(await theirs.client.get(f"/v1/legal-holds/{hid}")))["active"] is True


async def test_a_policy_deletes_exactly_what_it_names_and_a_dry_run_counts_it(
    org: Org, sql: psycopg.Connection
) -> None:
    c = org.client
    alice, bob = await user(c, "alice"), await user(c, "bob")
    app_id = (await ok(await c.post("/v1/apps", json={"name": "chat"}), 201))["id"]
    outside = [await memory(c, alice, f"outside {i}", type="episodic") for i in range(3)]
    inside = await memory(c, alice, "inside", type="episodic")
    other_type = await memory(c, alice, "a preference", type="preference")
    other_user = await memory(c, bob, "bob's episode", type="episodic")
    other_app = await memory(c, alice, "in the app", type="episodic", app_id=app_id)
    age(sql, "memory", outside, 30 * DAY + 60)  # a minute past the cut-off
    age(sql, "memory", [inside], 30 * DAY - 60)  # a minute before it
    age(sql, "memory", [other_type, other_user], 90 * DAY)
    age(sql, "memory", [other_app], 90 * DAY)
    made = await policy(c, target="memories", after_days=30, user_id=alice, memory_type="episodic")

    dry = await run(c, made["id"], dry=True)
    assert dry["dry_run"] is True and dry["counts"] == {"memories": {"deleted": 4}}  # outside ×3, other_app
    everyone = [*outside, inside, other_type, other_user, other_app]
    assert present(sql, "memory", everyone) == set(everyone)  # a dry run changes nothing
    real = await run(c, made["id"], dry=False)
    assert real["counts"] == dry["counts"] and real["error"] is None
    assert present(sql, "memory", everyone) == {inside, other_type, other_user}
    assert real["steps"] == [
        {
            "policy_id": made["id"],
            "name": made["name"],
            "target": "memories",
            "action": "delete",
            "rows": 4,
            "skipped": None,
            "partitions_dropped": 0,
        }
    ]
    # Narrowed to an app: only that app's.
    in_app = await memory(c, bob, "bob in the app", app_id=app_id)
    age(sql, "memory", [in_app], 90 * DAY)
    by_app = await policy(c, target="memories", after_days=30, app_id=app_id)
    assert (await run(c, by_app["id"], dry=False))["counts"] == {"memories": {"deleted": 1}}
    assert present(sql, "memory", [other_user, in_app]) == {other_user}
    runs = (await ok(await c.get("/v1/retention/runs", params={"policy_id": made["id"]})))["data"]
    assert [r["id"] for r in runs] == [real["id"], dry["id"]]  # newest first, dry runs kept too
    assert (await ok(await c.get(f"/v1/retention/runs/{real['id']}"))) == real
    audited = (await ok(await c.get("/v1/audit", params={"action": "retention.run"})))["data"]
    assert {a["entity_id"] for a in audited} >= {real["id"], dry["id"]}


async def test_keep_latest_and_the_idle_basis(org: Org, sql: psycopg.Connection) -> None:
    c = org.client
    alice, bob = await user(c, "kl-alice"), await user(c, "kl-bob")
    mine = [await memory(c, alice, f"note {i}") for i in range(5)]
    theirs = [await memory(c, bob, f"bob note {i}") for i in range(2)]
    for days, memory_id in enumerate(mine):  # mine[0] the newest, mine[4] the oldest
        age(sql, "memory", [memory_id], (40 + days) * DAY)
    age(sql, "memory", theirs, 50 * DAY)
    latest = await policy(c, target="memories", after_days=30, keep_latest=2)
    dry = await run(c, latest["id"], dry=True)
    assert dry["counts"] == {"memories": {"deleted": 3}}
    assert (await run(c, latest["id"], dry=False))["counts"] == dry["counts"]
    assert present(sql, "memory", mine + theirs) == {mine[0], mine[1], *theirs}

    # Idle: stored long ago, but read last week, it stays; never read, it goes.
    read, unread = await memory(c, alice, "read lately"), await memory(c, alice, "never read")
    age(sql, "memory", [read, unread], 400 * DAY)
    age(sql, "memory", [read], 7 * DAY, column="last_accessed_at")
    idle = await policy(c, target="memories", basis="idle", after_days=30, user_id=alice)
    await ok(await c.patch(f"/v1/retention/policies/{latest['id']}", json={"enabled": False}))
    report = await run(c, idle["id"], dry=False)
    assert report["counts"] == {"memories": {"deleted": 3}}  # unread, and mine[0], mine[1] (never read)
    assert present(sql, "memory", [read, unread, mine[0]]) == {read}


async def test_archive_changes_state_with_history(org: Org, sql: psycopg.Connection) -> None:
    c = org.client
    alice = await user(c, "ar-alice")
    old = [await memory(c, alice, f"old {i}") for i in range(3)]
    young = await memory(c, alice, "young")
    paused = await memory(c, alice, "paused old")
    await ok(await c.post(f"/v1/memories/{paused}/state", json={"state": "deleted"}))
    age(sql, "memory", [*old, paused], 100 * DAY)
    made = await policy(c, target="memories", action="archive", after_days=60)
    dry = await run(c, made["id"], dry=True)
    assert dry["counts"] == {"memories": {"archived": 3}}  # a soft-deleted memory is not archived
    assert (await run(c, made["id"], dry=False))["counts"] == dry["counts"]
    listed = await ok(await c.get("/v1/memories", params={"user_id": alice, "state": "archived"}))
    assert {m["id"] for m in listed["data"]} == set(old)
    assert all(m["archived_at"] and m["version"] == 2 for m in listed["data"])
    history = (await ok(await c.get(f"/v1/memories/{old[0]}/history")))["data"]
    assert history[-1]["action"] == "state_changed"
    assert history[-1]["old_values"] == {"state": "active"} and history[-1]["new_values"]["state"] == "archived"
    assert (await ok(await c.get(f"/v1/memories/{young}")))["state"] == "active"
    assert (await run(c, made["id"], dry=False))["counts"] == {}  # archived already: nothing more


async def test_a_legal_hold_suspends_deletion(org: Org, sql: psycopg.Connection) -> None:
    c = org.client
    held, free = await user(c, "held"), await user(c, "free")
    theirs, others = await memory(c, held, "held memory"), await memory(c, free, "free memory")
    age(sql, "memory", [theirs, others], 100 * DAY)
    made = await policy(c, target="memories", after_days=30)
    hold = await ok(await c.post("/v1/legal-holds", json={"user_id": held, "reason": "case 2026-17"}), 201)
    assert hold["active"] is True and hold["user_id"] == held
    assert_problem(await c.post("/v1/legal-holds", json={"user_id": str(uuid.uuid4()), "reason": "x"}), 404)

    dry = await run(c, made["id"], dry=True)
    assert dry["counts"] == {"memories": {"deleted": 1}}
    assert (await run(c, made["id"], dry=False))["counts"] == dry["counts"]
    assert present(sql, "memory", [theirs, others]) == {theirs}
    body = assert_problem(await c.delete(f"/v1/users/{held}"), 409)  # nor can the user be erased
    assert "hold" in str(body["detail"])

    # An org-wide hold stops every deletion, and says so.
    org_hold = await ok(await c.post("/v1/legal-holds", json={"reason": "regulator"}), 201)
    await ok(await c.post(f"/v1/legal-holds/{hold['id']}/release"))
    report = await run(c, made["id"], dry=False)
    assert report["counts"] == {} and report["steps"][0]["skipped"] == "legal hold on the organization"
    await ok(await c.delete(f"/v1/legal-holds/{org_hold['id']}"), 204)
    assert (await ok(await c.get("/v1/legal-holds")))["data"] == []
    released = (await ok(await c.get("/v1/legal-holds", params={"include_released": "true"})))["data"]
    assert {h["id"] for h in released} == {hold["id"], org_hold["id"]} and not any(h["active"] for h in released)
    assert (await run(c, made["id"], dry=False))["counts"] == {"memories": {"deleted": 1}}
    await ok(await c.delete(f"/v1/users/{held}"), 204)


async def test_expired_memories_and_sessions_are_deleted_from_everywhere(org: Org, sql: psycopg.Connection) -> None:
    c = org.client
    alice = await user(c, "ex-alice")
    hook = await ok(
        await c.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "event_types": ["memory.invalidated"]}),
        201,
    )
    gone = await memory(c, alice, "the gate code is 4411", expires_at="2020-01-01T00:00:00Z")
    kept = await memory(c, alice, "the wifi is called Lemon")
    sql.execute(
        "INSERT INTO user_narrative (org_id, id, user_id, version, content, provider, memory_count, fact_count) "
        "VALUES (%s, gen_random_uuid(), %s, 1, 'knows the gate code is 4411', 'test', 2, 0)",
        (org.id, alice),
    )
    session = await ok(await c.post("/v1/sessions", json={"user_id": alice, "title": "old chat"}), 201)
    said = {"messages": [{"role": "user", "content": "the heron nests by the mill"}]}
    await ok(await c.post(f"/v1/sessions/{session['id']}/messages", json={**said, "extract": False}), 201)
    await ok(await c.patch(f"/v1/sessions/{session['id']}", json={"expires_at": "2020-01-01T00:00:00Z"}))
    # Hidden at once: lists, search and context.
    listed = await ok(await c.get("/v1/sessions", params={"user_id": alice}))
    assert listed["data"] == []
    expired = await ok(await c.get("/v1/sessions", params={"user_id": alice, "include_expired": "true"}))
    assert [s["id"] for s in expired["data"]] == [session["id"]] and expired["data"][0]["expires_at"]
    found = await ok(await c.post("/v1/search", json={"query": "heron mill", "types": ["messages"], "user_id": alice}))
    assert found["results"] == []
    ctx = await ok(await c.post("/v1/context", json={"session_id": session["id"]}))
    assert "heron" not in ctx["context"] and "4411" not in ctx["context"]

    dry = await run(c, dry=True)
    assert dry["counts"] == {"memories": {"deleted": 1}, "sessions": {"deleted": 1}}
    report = await run(c, dry=False)
    assert report["counts"] == dry["counts"] and report["policy_id"] is None
    assert present(sql, "memory", [gone, kept]) == {kept}
    assert present(sql, "session", [session["id"]]) == set()
    assert sql.execute("SELECT count(*) FROM message WHERE session_id = %s", (session["id"],)).fetchone() == (0,)
    # Its user's narrative versions (which quoted it) went, and a fresh one is queued.
    assert sql.execute("SELECT count(*) FROM user_narrative WHERE user_id = %s", (alice,)).fetchone() == (0,)
    queued = sql.execute("SELECT count(*) FROM job WHERE user_id = %s AND kind = 'engram.narrate'", (alice,))
    assert queued.fetchone() == (1,)
    # One memory.expired event for the batch, sent to an endpoint following memory.invalidated.
    deliveries = (await ok(await c.get(f"/v1/webhooks/{hook['id']}/deliveries")))["data"]
    assert [d["event_type"] for d in deliveries] == ["memory.expired"]
    data = deliveries[0]["payload"]["data"]
    assert data["reason"] == "expires_at" and [m["id"] for m in data["memories"]] == [gone]
    assert "4411" not in str(deliveries[0]["payload"])


async def test_every_target_and_dry_equals_real_across_policies(
    org: Org, sql: psycopg.Connection, archive_dir: Path
) -> None:
    """One policy per target, overlapping where they can: the run-everything dry run counts per table what
    the real run then deletes, the session a message policy thins is recounted and loses its summary, and
    the audit rows are exported before they go."""
    c = org.client
    alice = await user(c, "all-alice")
    session = await ok(await c.post("/v1/sessions", json={"user_id": alice}), 201)
    sid = session["id"]
    said = {"messages": [{"role": "user", "content": f"turn {i}"} for i in range(4)], "extract": False}
    msgs = [m["id"] for m in (await ok(await c.post(f"/v1/sessions/{sid}/messages", json=said), 201))["data"]]
    sql.execute("UPDATE session SET summary = 'they talked' WHERE id = %s", (sid,))
    old_session = await ok(await c.post("/v1/sessions", json={"user_id": alice}), 201)
    sent = {"title": "old", "content": "an old note", "user_id": alice}
    doc = (await ok(await c.post("/v1/documents", json=sent), 201))["document"]
    mems = [await memory(c, alice, f"m {i}") for i in range(3)]
    age(sql, "memory", mems, 100 * DAY)
    sql.execute("UPDATE memory SET expires_at = now() - interval '1 day' WHERE id = %s", (mems[0],))  # expiry first
    age(sql, "message", msgs[:3], 100 * DAY)
    age(sql, "session", [old_session["id"]], 100 * DAY)
    age(sql, "document", [doc["id"]], 100 * DAY)
    sql.execute(
        "INSERT INTO job (org_id, id, kind, status, user_id, max_attempts, finished_at) VALUES "
        "(%s, gen_random_uuid(), 'engram.narrate', 'succeeded', %s, 1, now() - interval '100 days'), "
        "(%s, gen_random_uuid(), 'engram.narrate', 'queued', %s, 1, NULL)",
        (org.id, alice, org.id, alice),
    )
    sql.execute(
        "INSERT INTO audit_log (org_id, id, actor, action, entity_type, created_at) "
        "SELECT %s, gen_random_uuid(), 'test', 'old.thing', 'thing', now() - interval '100 days' "
        "FROM generate_series(1, 3)",
        (org.id,),
    )
    for target in ("memories", "messages", "sessions", "documents", "jobs", "audit_log", "access_log"):
        await policy(c, target=target, after_days=60)
    await policy(c, target="memories", after_days=60, keep_latest=1)  # overlaps the first: counted once
    await policy(c, target="webhook_deliveries", after_days=60, enabled=False)  # not run

    dry = await run(c, dry=True)
    expected = {
        "memories": {"deleted": 3},
        "messages": {"deleted": 3},
        "sessions": {"deleted": 1},
        "documents": {"deleted": 1},
        "jobs": {"deleted": 1},
        "audit_log": {"deleted": 3, "exported": 3},
    }
    assert dry["counts"] == expected
    real = await run(c, dry=False)
    assert real["counts"] == expected and real["error"] is None
    assert [s["target"] for s in real["steps"]][:2] == ["memories", "sessions"]  # expired rows first
    kept = await ok(await c.get(f"/v1/sessions/{sid}"))
    assert kept["message_count"] == 1 and kept["summary"] is None
    assert present(sql, "session", [old_session["id"]]) == set()
    assert present(sql, "document", [doc["id"]]) == set()
    assert sql.execute("SELECT status FROM job WHERE user_id = %s", (alice,)).fetchall() == [("queued",)]
    left = sql.execute("SELECT count(*) FROM audit_log WHERE org_id = %s AND action = 'old.thing'", (org.id,))
    assert left.fetchone() == (0,)
    (exported,) = (archive_dir / str(org.id) / "audit_log").glob(f"run-{real['id']}.jsonl")
    lines = exported.read_text().splitlines()
    assert len(lines) == 3 and all('"action":"old.thing"' in line for line in lines)
    assert (await run(c, dry=True))["counts"] == {}  # nothing left to do


async def test_one_real_run_of_an_organization_at_a_time(org: Org, sql: psycopg.Connection) -> None:
    lock = (0x72746E73, str(org.id))  # what a run in progress holds (services/governance/retention.py)
    sql.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", lock)
    try:
        body = assert_problem(await org.client.post("/v1/retention/run"), 409)
        assert "in progress" in str(body["detail"])
        assert (await run(org.client, dry=True))["dry_run"] is True  # a dry run changes nothing: it may overlap
    finally:
        sql.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", lock)
    assert (await run(org.client, dry=False))["error"] is None
