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


async def test_text_of_only_white_space_is_422(org: Org) -> None:
    """Trimmed fields check their length after trimming: "   " is empty (a fact with it was a 500)."""
    c = org.client
    for blank in ("   ", "\u00a0\t"):
        for field in ("subject", "object"):
            fact = {"subject": "Alice", "predicate": "likes", "object": "tea", field: blank}
            body = assert_problem(await c.post("/v1/facts", json=fact), 422)
            assert [e["location"] for e in body["errors"]] == [f"body/{field}"]  # type: ignore[union-attr, index]
        assert_problem(await c.post("/v1/search", json={"query": blank}), 422)
        assert_problem(await c.post("/v1/documents", json={"content": "notes", "path": blank}), 422)
        assert_problem(await c.post("/v1/documents", json={"content": "notes", "source_url": blank}), 422)
        assert_problem(await c.post("/v1/categories", json={"name": "blank", "description": blank * 3}), 422)
    r = await c.post("/v1/facts", json={"subject": "  Alice ", "predicate": "likes", "object": " tea "})
    assert r.status_code == 201, r.text
    assert (r.json()["fact"]["subject"], r.json()["fact"]["object"]) == ("Alice", "tea")


async def test_timestamps_are_iso_8601_text_never_numbers(org: Org) -> None:
    """A number (or text of digits) is not read as Unix time: 1700000000 would silently become 2023-11-14."""
    c = org.client
    fact = {"subject": "Alice", "predicate": "lives in", "object": "Lisbon"}
    for bad in (1700000000, 0.5, "1700000000", "0", True, "2026-01-31_09:30:00"):
        body = assert_problem(await c.post("/v1/facts", json={**fact, "valid_from": bad}), 422)
        assert [e["location"] for e in body["errors"]] == ["body/valid_from"]  # type: ignore[union-attr, index]
        assert_problem(await c.post("/v1/memories", json={"content": "x", "expires_at": bad}), 422)
    for url, name in (("/v1/facts", "valid_at"), ("/v1/usage", "until"), ("/v1/audit", "before")):
        assert_problem(await c.get(url, params={name: "0.5"}), 422)
        assert_problem(await c.get(url, params={name: "1700000000"}), 422)
        assert (await c.get(url, params={name: "2026-01-31T09:30:00Z"})).status_code == 200
    for good, stored in (("2026-01-31T09:30:00+01:00", "2026-01-31T08:30:00Z"), ("2026-01-31", "2026-01-31T00:00:00Z")):
        r = await c.post("/v1/facts", json={**fact, "object": f"Lisbon {good}", "valid_from": good})
        assert r.status_code == 201, r.text
        assert r.json()["fact"]["valid_from"].replace("+00:00", "Z") == stored


def test_patch_bodies_offer_null_only_where_it_clears_a_field(app) -> None:  # type: ignore[no-untyped-def]
    """A PATCH with null for a field that cannot be cleared (a team's name) is a 422 "may not be null", so the
    OpenAPI document may not offer null there: schemathesis sent it as valid data."""
    from engramdb.storage import tables as t

    schemas = app.openapi()["components"]["schemas"]
    for model, table in (
        ("TeamUpdate", t.team),
        ("UserUpdate", t.user_account),
        ("AgentUpdate", t.agent),
        ("AppUpdate", t.app),
    ):
        for name, prop in schemas[model]["properties"].items():
            offers_null = '"null"' in json.dumps(prop)
            assert offers_null == (table.c[name].nullable or name == "metadata"), (model, name, prop)  # metadata: {}
    task = schemas["TaskUpdate"]["properties"]
    assert [n for n in ("title", "priority", "max_attempts", "metadata") if '"null"' in json.dumps(task[n])] == []
    assert task["priority"]["minimum"] == -1000 and "default" not in task["priority"]


async def test_patch_with_null_for_a_field_that_cannot_be_cleared_is_422(org: Org) -> None:
    team = (await org.client.post("/v1/teams", json={"name": "support"})).json()
    body = assert_problem(await org.client.patch(f"/v1/teams/{team['id']}", json={"name": None}), 422)
    assert [e["location"] for e in body["errors"]] == ["body/name"]  # type: ignore[union-attr, index]
    r = await org.client.patch(f"/v1/teams/{team['id']}", json={"description": None, "metadata": None})
    assert r.status_code == 200, r.text


def test_the_document_declares_errors_as_problem_json(app) -> None:  # type: ignore[no-untyped-def]
    """Errors are answered as application/problem+json: the document names that media type with the Problem
    schema, not application/json (so a client, or schemathesis, checks error bodies against it)."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response.get("content") == problem, (method, path, status)


def test_forms_and_base64_fields_are_described_as_sent(app) -> None:  # type: ignore[no-untyped-def]
    """A multipart form has no null (a client would send the text "null", not a UUID): the upload's fields
    are left out instead; base64 text is OpenAPI's format "byte", which clients and fuzzers know."""
    schemas = app.openapi()["components"]["schemas"]
    upload = schemas["Body_upload_document"]["properties"]
    assert [name for name, prop in upload.items() if "anyOf" in prop or "null" in json.dumps(prop)] == []
    assert upload["repository_id"] == {"type": "string", "format": "uuid", "title": "Repository Id"}
    base64 = schemas["RepositoryFile"]["properties"]["content_base64"]["anyOf"][0]
    assert base64 == {"type": "string", "format": "byte"}
