"""Rate limits: per key and per organization, counted in PostgreSQL (so two app instances on one database
share them), answered 429 problem+json with Retry-After and the RateLimit-* fields; admins set their
organization's own limits with GET/PUT /v1/limits; /v1/usage reports requests and stored rows."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from engramdb.api.admission import SPECIAL_CLASSES, RouteClasses
from engramdb.config import Settings
from engramdb.schemas.limits import LimitsUpdate, LimitValues
from engramdb.server import create_app
from engramdb.services.core.caller import Caller
from engramdb.services.tenancy import quotas
from engramdb.storage.database import Database
from tests.conftest import Org, assert_problem, client_for

# A window of a day: limits of a few requests per day come back one every few hours, never during a test.
WINDOW_S = 86_400


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        rate_limit_window_s=WINDOW_S,
        rate_limit_writes=5,
        org_rate_limit_writes=8,
        rate_limit_searches=3,
    )


async def _team(client: httpx.AsyncClient, n: int) -> httpx.Response:
    return await client.post("/v1/teams", json={"name": f"team-{n}-{uuid.uuid4().hex[:6]}"})


def _limit_fields(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return int(h["ratelimit-limit"]), int(h["ratelimit-remaining"]), int(h["ratelimit-reset"])


async def test_a_flood_from_one_key_is_refused_and_other_orgs_are_not(make_org) -> None:  # type: ignore[no-untyped-def]
    flooder, bystander = await make_org(), await make_org()
    answers = await asyncio.gather(*(_team(flooder.client, n) for n in range(20)))
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {201: 5, 429: 15}, statuses
    for r in answers:
        limit, remaining, reset = _limit_fields(r)
        assert limit == 5 and 0 <= remaining <= 4 and 0 < reset <= WINDOW_S
        if r.status_code == 429:
            body = assert_problem(r, 429)
            assert body["type"] == "urn:engramdb:problem:rate-limited"
            assert "API key" in str(body["detail"]) and "writes" in str(body["detail"])
            assert reset <= int(r.headers["retry-after"]) <= reset + quotas.MAX_JITTER_S and remaining == 0
    # Reads have no limit here, and another class has its own.
    assert (await flooder.client.get("/v1/teams")).status_code == 200
    assert "ratelimit-limit" not in (await flooder.client.get("/v1/teams")).headers
    # Another organization is not touched.
    other = await _team(bystander.client, 0)
    assert other.status_code == 201 and _limit_fields(other)[:2] == (5, 4)


async def test_a_key_refused_does_not_use_up_its_organization(app, make_org) -> None:  # type: ignore[no-untyped-def]
    org = await make_org()
    created = await org.client.post("/v1/keys", json={"name": "second", "scopes": ["admin"]})
    async with client_for(app, created.json()["api_key"]) as second:
        # Creating the key was the first key's first write: 4 more are allowed, then its limit refuses.
        first_wave = [await _team(org.client, n) for n in range(6)]
        assert [r.status_code for r in first_wave] == [201] * 4 + [429] * 2
        second_wave = [await _team(second, n) for n in range(4)]  # the organization has 8 - 5 = 3 left
        assert [r.status_code for r in second_wave] == [201] * 3 + [429]
    refused = second_wave[-1]
    assert "organization" in str(assert_problem(refused, 429)["detail"])
    assert _limit_fields(refused)[:2] == (8, 0)
    # The fields show whichever limit is closer to running out.
    assert _limit_fields(first_wave[0])[:2] == (5, 3)  # the key's (the organization has 6 left)
    assert _limit_fields(second_wave[0])[:2] == (8, 2)  # the organization's (the key has 4 left)


async def test_two_app_instances_on_one_database_share_the_counters(  # type: ignore[no-untyped-def]
    settings: Settings, embedder, make_org
) -> None:
    org: Org = await make_org()
    other_db = Database.connect(settings)  # another process's engine and pool
    try:
        other_app = create_app(settings, db=other_db, embedder=embedder)
        async with client_for(other_app, org.key) as elsewhere:
            search = {"query": "anything at all"}
            answers = [
                await org.client.post("/v1/search", json=search),
                await elsewhere.post("/v1/search", json=search),
                await org.client.post("/v1/search", json=search),
                await elsewhere.post("/v1/search", json=search),
            ]
    finally:
        await other_db.dispose()
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [_limit_fields(r)[1] for r in answers] == [2, 1, 0, 0]


async def test_admins_read_and_lower_their_limits(make_org) -> None:  # type: ignore[no-untyped-def]
    org = await make_org()
    shown = (await org.client.get("/v1/limits")).json()
    assert shown["window_s"] == WINDOW_S and shown["burst"] == 1.0
    writes = next(c for c in shown["data"] if c["route_class"] == "writes")
    assert writes == {
        "route_class": "writes",
        "per_key": 5,
        "per_org": 8,
        "default_per_key": 5,
        "default_per_org": 8,
        "override_per_key": None,
        "override_per_org": None,
    }
    # Each PUT is a write, and the module allows 5 per key: this test makes exactly 5.
    put = await org.client.put("/v1/limits", json={"searches": {"per_key": 1}, "reads": {"per_org": 1000}})
    assert put.status_code == 200, put.text
    by_class = {c["route_class"]: c for c in put.json()["data"]}
    assert by_class["searches"]["per_key"] == 1 and by_class["searches"]["per_org"] == 0
    assert by_class["reads"]["per_org"] == 1000  # no default: any value is a lowering
    search = {"query": "anything"}
    assert [(await org.client.post("/v1/search", json=search)).status_code for _ in range(2)] == [200, 429]
    # Above the server's default is the operator's call, not the organization's.
    raised = await org.client.put("/v1/limits", json={"writes": {"per_key": 50}})
    assert "operator" in str(assert_problem(raised, 403)["detail"])
    unlimited = await org.client.put("/v1/limits", json={"searches": {"per_key": 0}})
    assert_problem(unlimited, 403)
    assert_problem(await org.client.put("/v1/limits", json={"uploads": {"per_key": 1}}), 422)
    # PUT is whole: what is left out has the defaults again.
    reset = (await org.client.put("/v1/limits", json={})).json()
    assert all(c["override_per_key"] is None and c["override_per_org"] is None for c in reset["data"])
    audit = (await org.client.get("/v1/audit", params={"action": "limits.updated"})).json()["data"]
    assert len(audit) == 2


async def test_only_admins_see_limits_and_the_operator_may_raise_them(  # type: ignore[no-untyped-def]
    app, make_org, db: Database, settings: Settings
) -> None:
    org = await make_org()
    key = (await org.client.post("/v1/keys", json={"name": "writer", "scopes": ["write"]})).json()["api_key"]
    async with client_for(app, key) as writer:
        assert_problem(await writer.get("/v1/limits"), 403)
        assert_problem(await writer.put("/v1/limits", json={}), 403)
    operator = Caller.operator(org.id)
    raised = await quotas.replace(db, operator, LimitsUpdate(writes=LimitValues(per_key=50, per_org=0)), settings)
    writes = next(c for c in raised.data if c.route_class == "writes")
    assert (writes.per_key, writes.per_org) == (50, 0)
    answers = [await _team(org.client, n) for n in range(7)]
    assert {r.status_code for r in answers} == {201}
    # The key's creation was a write too, counted in time at the old limit's pace: one interval of 5 per
    # window is ten of 50 per window, so 50 - 10 - 7 are left.
    assert _limit_fields(answers[-1])[:2] == (50, 33)


async def test_usage_reports_requests_and_stored_rows(make_org) -> None:  # type: ignore[no-untyped-def]
    org = await make_org()
    session = (await org.client.post("/v1/sessions", json={})).json()
    await org.client.post(
        f"/v1/sessions/{session['id']}/messages",
        json={"messages": [{"role": "user", "content": "I moved to Porto last year."}], "extract": False},
    )
    await org.client.post("/v1/memories", json={"content": "likes green tea"})
    await org.client.post("/v1/search", json={"query": "tea"})
    usage = (await org.client.get("/v1/usage")).json()
    requests = {r["route_class"]: r for r in usage["requests"]}
    assert requests["writes"]["requests"] == 2 and requests["extraction"]["requests"] == 1
    assert requests["searches"]["requests"] == 1 and requests["reads"]["requests"] >= 1
    assert all(r["refused"] == 0 for r in requests.values())
    rows = {r["table"]: r for r in usage["storage"]}
    assert rows["messages"]["rows"] == 1 and rows["memories"]["rows"] == 1 and rows["sessions"]["rows"] == 1
    assert rows["documents"]["rows"] == 0 and rows["documents"]["bytes"] == 0
    assert rows["messages"]["bytes"] > 0
    assert usage["storage_bytes"] == sum(r["bytes"] for r in usage["storage"])


def test_every_special_operation_exists_and_is_classed(app) -> None:  # type: ignore[no-untyped-def]
    ops = {op["operationId"] for ops in app.openapi()["paths"].values() for op in ops.values()}
    assert set(SPECIAL_CLASSES) <= ops
    classes = RouteClasses(app.openapi()["paths"])
    assert classes.of("POST", "/v1/search") == "searches"
    assert classes.of("POST", "/v1/context") == "searches"
    assert classes.of("POST", f"/v1/sessions/{uuid.uuid4()}/messages") == "extraction"
    assert classes.of("GET", f"/v1/sessions/{uuid.uuid4()}/messages") == "reads"
    assert classes.of("POST", f"/v1/jobs/{uuid.uuid4()}/retry") == "extraction"
    assert classes.of("GET", "/v1/export") == "exports" and classes.of("POST", "/v1/import") == "exports"
    assert classes.of("POST", "/v1/memories") == "writes" and classes.of("DELETE", "/v1/memories/x") == "writes"


async def test_limits_are_whole_numbers(org: Org) -> None:
    for bad in (False, "10", 1.5, -1):
        assert_problem(await org.client.put("/v1/limits", json={"reads": {"per_key": bad}}), 422)


def test_refusals_spread_their_retry_after() -> None:
    """Clients refused together are told to come back after the wait for the next allowed request plus a
    random share of up to as much again (at most MAX_JITTER_S), so they do not all return at one moment."""
    settings = Settings(rate_limit_window_s=40)
    decision = quotas.Decision(False, 10, 0, 7, "key")
    after = {quotas.refusal(decision, "writes", settings).retry_after_s for _ in range(300)}
    assert min(after) >= 7 and max(after) <= 14
    assert len(after) > 5  # spread, not one moment
    long_wait = quotas.Decision(False, 10, 0, 600, "key")
    assert {quotas.refusal(long_wait, "writes", settings).retry_after_s for _ in range(100)} <= set(range(600, 616))
