"""The query string: every route refuses a parameter it does not declare (422 naming it), list filters travel
as one model from the SDK to SQL, and JSON-valued and paging parameters are checked on the way in.

The unknown-parameter test walks the OpenAPI document, so a route added tomorrow is covered the day it
appears: unless it refuses ``bogus_param`` like the others, the test fails.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from engramdb.schemas.memories import MemoryFilters
from engramdb.sdk import AsyncClient
from tests.conftest import Org, OrgFactory, assert_problem

# A valid value for each path parameter (an invalid one is answered by the route's own checks); the check
# runs before any lookup, so the ids need not exist.
PATH_VALUES = {"external_id": "someone", "name": "lives_in"}


def _operations(app: Any) -> list[tuple[str, str, str]]:  # (method, path, operationId)
    return [
        (method.upper(), path, op["operationId"])
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
    ]


def _names_bogus(body: dict[str, Any]) -> bool:
    locations = [e.get("location") for e in body.get("errors") or ()]
    return "query/bogus_param" in locations and "bogus_param" in str(body["detail"])


async def test_every_route_refuses_an_unknown_query_parameter(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    operations = _operations(app)
    for method, path, op_id in operations:
        url = re.sub(r"{(\w+)}", lambda m: PATH_VALUES.get(m.group(1), str(uuid.uuid4())), path)
        r = await org.client.request(method, url, params={"bogus_param": "1"})
        body = assert_problem(r, 422)
        assert body["type"] == "urn:engramdb:problem:validation-failed", f"{op_id}: {body}"
        assert _names_bogus(body), f"{op_id} ({method} {path}) does not name bogus_param: {body}"
    assert len(operations) >= 80


async def test_no_documented_query_parameter_is_refused(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    """Every query parameter the OpenAPI document lists passes the check (its value may still be wrong:
    "x" is no number, flag or id, so most of these calls fail validation and change nothing)."""
    spec = app.openapi()["paths"]
    checked = 0
    for method, path, op_id in _operations(app):
        names = [p["name"] for p in spec[path][method.lower()].get("parameters", []) if p["in"] == "query"]
        if not names:
            continue
        url = re.sub(r"{(\w+)}", lambda m: PATH_VALUES.get(m.group(1), str(uuid.uuid4())), path)
        r = await org.client.request(method, url, params=dict.fromkeys(names, "x"))
        errors = r.json().get("errors") or [] if r.status_code == 422 else []
        assert all(e.get("message") != "unknown query parameter" for e in errors), f"{op_id}: {r.text}"
        checked += 1
    assert checked >= 25


async def test_unknown_parameters_are_all_named(org: Org) -> None:
    r = await org.client.get("/v1/memories", params={"limit": 5, "tag": "x", "userid": "y"})
    body = assert_problem(r, 422)
    assert [e["location"] for e in body["errors"]] == ["query/tag", "query/userid"]  # type: ignore[union-attr]
    assert "tag" in str(body["detail"]) and "userid" in str(body["detail"]) and "tags_any" in str(body["detail"])


async def test_a_single_valued_parameter_given_twice_is_a_422(org: Org) -> None:
    r = await org.client.get("/v1/tags", params=[("prefix", "a"), ("prefix", "b")])
    body = assert_problem(r, 422)
    assert [e["location"] for e in body["errors"]] == ["query/prefix"]  # type: ignore[union-attr]
    assert "prefix" in str(body["detail"]) and "more than once" in str(body["detail"])
    r = await org.client.get("/v1/memories", params=[("limit", "5"), ("limit", "6")])
    assert [e["location"] for e in assert_problem(r, 422)["errors"]] == ["query/limit"]  # type: ignore[union-attr]
    # List-typed parameters repeat.
    r = await org.client.get("/v1/memories", params=[("tags_any", "a"), ("tags_any", "b")])
    assert r.status_code == 200, r.text


async def test_a_route_without_query_parameters_says_so(org: Org) -> None:
    r = await org.client.post("/v1/sessions", params={"dry_run": "true"}, json={})
    body = assert_problem(r, 422)
    assert "dry_run" in str(body["detail"]) and "no query parameters" in str(body["detail"])
    assert (await org.client.get("/v1/sessions")).json()["data"] == []  # nothing was created


@pytest.mark.parametrize("path", ["/v1/memories", "/v1/sessions", "/v1/documents"])
@pytest.mark.parametrize("value", ["[1, 2]", "not json", '"text"', "{"])
async def test_metadata_that_is_not_a_json_object_is_a_422_naming_it(org: Org, path: str, value: str) -> None:
    body = assert_problem(await org.client.get(path, params={"metadata": value}), 422)
    assert [e["location"] for e in body["errors"]] == ["query/metadata"]  # type: ignore[union-attr]


async def test_messages_metadata_is_checked_too(org: Org) -> None:
    session = (await org.client.post("/v1/sessions", json={})).json()
    r = await org.client.get(f"/v1/sessions/{session['id']}/messages", params={"metadata": "[]"})
    body = assert_problem(r, 422)
    assert body["errors"][0]["location"] == "query/metadata"  # type: ignore[index]


@pytest.mark.parametrize("path", ["/v1/memories", "/v1/teams", "/v1/tags", "/v1/jobs", "/v1/audit"])
@pytest.mark.parametrize("limit", ["201", "0", "lots"])
async def test_limit_out_of_range_is_a_422(org: Org, path: str, limit: str) -> None:
    body = assert_problem(await org.client.get(path, params={"limit": limit}), 422)
    assert [e["location"] for e in body["errors"]] == ["query/limit"]  # type: ignore[union-attr]
    assert (await org.client.get(path, params={"limit": "200"})).status_code == 200


def test_filter_models_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="bogus"):
        MemoryFilters.model_validate({"bogus": 1})
    with pytest.raises(ValidationError, match="limit"):
        MemoryFilters(limit=201)


@pytest.fixture
async def sdk(app, make_org: OrgFactory) -> AsyncIterator[AsyncClient]:  # type: ignore[no-untyped-def]
    org = await make_org()
    async with AsyncClient("http://engram.test", org.key, transport=httpx.ASGITransport(app=app)) as client:
        yield client


async def test_list_filters_round_trip_through_the_sdk(sdk: AsyncClient) -> None:
    made = {
        name: await sdk.memories.create(external_user_id="rt", content=f"memory {name}", tags=tags, metadata=meta)
        for name, tags, meta in (
            ("billing-a", ["a"], {"topic": "billing", "n": 1}),
            ("billing-b", ["b"], {"topic": "billing"}),
            ("support-a", ["a", "c"], {"topic": "support"}),
            ("untagged", [], {}),
        )
    }

    async def names(*args: Any, **fields: Any) -> set[str]:
        found = await sdk.memories.list(*args, external_user_id="rt", **fields).to_list()
        return {name for name, m in made.items() if m.id in {f.id for f in found}}

    assert await names(tags_any=["a", "b"]) == {"billing-a", "billing-b", "support-a"}
    assert await names(tags_all=["a", "c"]) == {"support-a"}
    assert await names(metadata={"topic": "billing"}) == {"billing-a", "billing-b"}
    assert await names(tags_any=["a"], metadata={"topic": "billing"}) == {"billing-a"}
    assert await names(metadata={"topic": "billing", "n": 1}) == {"billing-a"}
    # The model itself, instead of keywords; paging comes with it.
    model = MemoryFilters(external_user_id="rt", tags_any=["a", "b"], limit=1)
    pager = sdk.memories.list(model)
    first = await pager.page()
    assert len(first.data) == 1 and first.next_cursor
    assert len(await pager.to_list()) == 3
    with pytest.raises(TypeError):
        sdk.memories.list(model, limit=2)
    with pytest.raises(ValidationError):  # checked before it is sent
        sdk.memories.list(tags_any=["a"], bogus=1)


async def test_session_metadata_filter_through_the_sdk(sdk: AsyncClient) -> None:
    keep = await sdk.sessions.create(external_user_id="s", metadata={"import_key": "k1", "source": "chat"})
    await sdk.sessions.create(external_user_id="s", metadata={"import_key": "k2"})
    found = await sdk.sessions.list(external_user_id="s", metadata={"import_key": "k1"}, limit=1).page()
    assert [s.id for s in found.data] == [keep.id]
