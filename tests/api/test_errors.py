"""Bad input gets a clear 4xx problem+json, never a 500 and never a half-written change."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engramdb import limits
from tests.conftest import Org, assert_problem

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


async def test_malformed_json(org: Org) -> None:
    r = await org.client.post("/v1/memories", content=b'{"content": ', headers={"content-type": "application/json"})
    body = assert_problem(r, 400)
    assert body["type"] == "urn:engramdb:problem:malformed-json"


async def test_wrong_types_and_unknown_fields(org: Org) -> None:
    body = assert_problem(await org.client.post("/v1/memories", json={"content": 5, "colour": "red"}), 422)
    locations = {e["location"] for e in body["errors"]}  # type: ignore[attr-defined, union-attr]
    assert locations == {"body/content", "body/colour"}
    assert_problem(await org.client.get("/v1/memories/not-a-uuid"), 422)
    assert_problem(await org.client.get("/v1/memories", params={"limit": 0}), 422)
    assert_problem(await org.client.get("/v1/memories", params={"limit": limits.MAX_PAGE_SIZE + 1}), 422)


async def test_limits(org: Org) -> None:
    s = (await org.client.post("/v1/sessions", json={})).json()
    url = f"/v1/sessions/{s['id']}/messages"
    too_long = {"role": "user", "content": "x" * (limits.MAX_MESSAGE_CHARS + 1)}
    assert_problem(await org.client.post(url, json={"messages": [too_long]}), 422)
    at_limit = {"role": "user", "content": "x" * limits.MAX_MESSAGE_CHARS}
    assert (await org.client.post(url, json={"messages": [at_limit]})).status_code == 201
    many = [{"role": "user", "content": "x"}] * (limits.MAX_MESSAGES_PER_BATCH + 1)
    assert_problem(await org.client.post(url, json={"messages": many}), 422)
    assert_problem(await org.client.post(url, json={"messages": []}), 422)
    big_meta = {"k": "v" * limits.MAX_METADATA_BYTES}
    assert_problem(
        await org.client.post(url, json={"messages": [{"role": "user", "content": "x", "metadata": big_meta}]}), 422
    )
    tags = [f"t{i}" for i in range(limits.MAX_TAGS + 1)]
    assert_problem(await org.client.post("/v1/memories", json={"content": "x", "tags": tags}), 422)
    assert_problem(await org.client.post("/v1/memories", json={"content": "x", "tags": ["t" * 65]}), 422)
    assert_problem(await org.client.post("/v1/memories", json={"content": "nul \x00 byte"}), 422)
    assert (await org.client.get(url)).json()["data"][0]["content"] == "x" * limits.MAX_MESSAGE_CHARS


async def test_body_over_the_request_limit_is_413(org: Org, settings) -> None:  # type: ignore[no-untyped-def]
    payload = json.dumps({"content": "x" * (settings.max_request_bytes + 10)}).encode()
    assert_problem(
        await org.client.post("/v1/memories", content=payload, headers={"content-type": "application/json"}), 413
    )

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(settings.max_request_bytes // 65536 + 2):
            yield b"x" * 65536

    r = await org.client.post("/v1/memories", content=chunks(), headers={"content-type": "application/json"})
    assert_problem(r, 413)


async def test_unknown_route_and_method(org: Org) -> None:
    assert_problem(await org.client.get("/v1/nothing-here"), 404)
    assert_problem(await org.client.put("/v1/memories"), 405)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON_VALUES)
async def test_any_json_body_gets_a_4xx_or_success_never_500(org: Org, body: object) -> None:
    for url in ("/v1/memories", "/v1/sessions", "/v1/teams", "/v1/keys"):
        r = await org.client.post(url, json=body)
        assert r.status_code < 500, (url, body, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    role=st.text(max_size=12),
    content=st.text(max_size=50),
    tags=st.lists(st.text(max_size=70), max_size=40),
    occurred_at=st.one_of(st.none(), st.text(max_size=30), st.datetimes().map(lambda d: d.isoformat())),
)
async def test_message_fields_validate_cleanly(
    org: Org, role: str, content: str, tags: list[str], occurred_at: str | None
) -> None:
    s = (await org.client.post("/v1/sessions", json={})).json()
    msg = {"role": role, "content": content, "tags": tags, "occurred_at": occurred_at}
    r = await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": [msg]})
    assert r.status_code in (201, 422), r.text
    stored = (await org.client.get(f"/v1/sessions/{s['id']}/messages")).json()["data"]
    assert len(stored) == (1 if r.status_code == 201 else 0)
    if r.status_code == 201:
        assert stored[0]["content"] == content


async def test_values_postgres_cannot_store_are_422(org: Org) -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(40):
        node["k"] = {}
        node = node["k"]  # type: ignore[assignment]
    assert_problem(await org.client.post("/v1/memories", json={"content": "x", "metadata": deep}), 422)
    raw = b'{"content": "a\\ud800"}'
    r = await org.client.post("/v1/memories", content=raw, headers={"content-type": "application/json"})
    assert_problem(r, 422)
    s = (await org.client.post("/v1/sessions", json={})).json()
    import base64

    cursor = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", Infinity]').decode().rstrip("=")
    assert_problem(await org.client.get(f"/v1/sessions/{s['id']}/messages", params={"cursor": cursor}), 400)
