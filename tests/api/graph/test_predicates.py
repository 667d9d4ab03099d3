"""The predicate catalogue through the API: a fact created without ``single_valued`` follows its predicate's
cardinality (built-in, the organization's own, or its override of a built-in), and the catalogue is each
organization's own."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org, OrgFactory, assert_problem, client_for


async def _fact(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/facts", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def _valid_now(client: httpx.AsyncClient, subject: str, predicate: str) -> dict[str, Any]:
    """Object → its current version, for the facts believed now (closed copies included)."""
    r = await client.get("/v1/facts", params={"subject": subject, "predicate": predicate})
    assert r.status_code == 200, r.text
    return {f["object"]: f for f in r.json()["data"]}


async def _put(client: httpx.AsyncClient, name: str, **body: Any) -> dict[str, Any]:
    r = await client.put(f"/v1/predicates/{name}", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_a_new_home_closes_the_old_one_without_single_valued(org: Org) -> None:
    """The regression: ``bob lives_in Berlin`` then ``bob lives_in Lisbon`` left both valid."""
    c = org.client
    berlin = await _fact(c, subject="bob", predicate="lives_in", object="Berlin", valid_from="2024-01-01")
    lisbon = await _fact(c, subject="bob", predicate="Lives In", object="Lisbon", valid_from="2025-03-01")
    assert lisbon["action"] == "INVALIDATE" and lisbon["invalidated"] == [berlin["fact"]["id"]]
    assert lisbon["fact"]["single_valued"] is True
    now = await _valid_now(c, "bob", "lives_in")
    assert now["Lisbon"]["valid_until"] is None
    assert now["Berlin"]["valid_until"].startswith("2025-03-01")
    r = await c.get("/v1/facts", params={"subject": "bob", "valid_at": "2025-06-01"})
    assert [f["object"] for f in r.json()["data"]] == ["Lisbon"]
    # A predicate the catalogue does not name accumulates, as before.
    await _fact(c, subject="bob", predicate="visited", object="Rome")
    assert (await _fact(c, subject="bob", predicate="visited", object="Oslo"))["action"] == "ADD"
    assert sorted(await _valid_now(c, "bob", "visited")) == ["Oslo", "Rome"]


async def test_an_override_to_many_keeps_both_and_deleting_it_brings_the_builtin_back(org: Org) -> None:
    c = org.client
    assert (await c.get("/v1/predicates/lives_in")).json() == {
        "name": "lives_in",
        "cardinality": "one",
        "description": "the place someone lives now",
        "source": "builtin",
        "builtin_cardinality": "one",
        "updated_at": None,
    }
    set_ = await _put(c, "Lives_In", cardinality="many", description="homes: people here keep several")
    assert (set_["name"], set_["cardinality"], set_["source"], set_["builtin_cardinality"]) == (
        "lives_in",
        "many",
        "organization",
        "one",
    )
    assert set_["updated_at"] and (await c.get("/v1/predicates/lives_in")).json() == set_
    await _fact(c, subject="ana", predicate="lives_in", object="Porto")
    assert (await _fact(c, subject="ana", predicate="lives_in", object="Faro"))["action"] == "ADD"
    now = await _valid_now(c, "ana", "lives_in")
    assert {k: v["valid_until"] for k, v in now.items()} == {"Faro": None, "Porto": None}
    # An explicit single_valued still wins over the catalogue.
    braga = await _fact(c, subject="ana", predicate="lives_in", object="Braga", single_valued=True)
    assert braga["action"] == "INVALIDATE" and len(braga["invalidated"]) == 2

    assert (await c.delete("/v1/predicates/lives_in")).status_code == 204
    assert (await c.get("/v1/predicates/lives_in")).json()["source"] == "builtin"
    assert_problem(await c.delete("/v1/predicates/lives_in"), 404)  # nothing of the org's left to delete
    await _fact(c, subject="cy", predicate="lives_in", object="Bonn")
    assert (await _fact(c, subject="cy", predicate="lives_in", object="Kiel"))["action"] == "INVALIDATE"


async def test_a_custom_predicate_set_to_one_closes_and_the_list_pages_by_name(org: Org) -> None:
    c = org.client
    drives = await _put(c, "Drives Car", cardinality="one")
    assert (drives["name"], drives["source"], drives["builtin_cardinality"], drives["description"]) == (
        "drives_car",
        "organization",
        None,
        None,
    )
    old = await _fact(c, subject="dee", predicate="drives car", object="Volvo")
    new = await _fact(c, subject="dee", predicate="drives_car", object="Saab")
    assert new["action"] == "INVALIDATE" and new["invalidated"] == [old["fact"]["id"]]
    # Redefined whole: many again, so the next one accumulates.
    assert (await _put(c, "drives_car", cardinality="many"))["cardinality"] == "many"
    assert (await _fact(c, subject="dee", predicate="drives_car", object="Fiat"))["action"] == "ADD"

    names: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await c.get("/v1/predicates", params=params)).json()
        assert len(page["data"]) <= 4
        names += [p["name"] for p in page["data"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert names == sorted(names) and len(names) == len(set(names)) and {"drives_car", "lives_in"} <= set(names)
    own = (await c.get("/v1/predicates", params={"source": "organization"})).json()["data"]
    assert [p["name"] for p in own] == ["drives_car"]
    ones = (await c.get("/v1/predicates", params={"cardinality": "one"})).json()["data"]
    assert "lives_in" in {p["name"] for p in ones} and all(p["cardinality"] == "one" for p in ones)
    assert "likes" not in {p["name"] for p in ones}


async def test_bad_input_is_refused_by_name(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    body = assert_problem(await c.put("/v1/predicates/lives_in", json={"cardinality": "several"}), 422)
    assert "cardinality" in str(body)
    body = assert_problem(await c.put("/v1/predicates/lives_in", json={"cardinality": "one", "colour": 1}), 422)
    assert "colour" in str(body)
    assert_problem(await c.put("/v1/predicates/lives_in", json={}), 422)
    assert_problem(await c.put("/v1/predicates/drop-table", json={"cardinality": "one"}), 422)
    assert_problem(await c.put(f"/v1/predicates/{'p' * 101}", json={"cardinality": "one"}), 422)
    assert_problem(await c.get("/v1/predicates", params={"cardinality": "some"}), 422)
    assert_problem(await c.get("/v1/predicates", params={"cursor": "made-up"}), 400)
    assert_problem(await c.get("/v1/predicates/never_defined"), 404)
    assert_problem(await c.delete("/v1/predicates/works_at"), 404)  # a built-in the org never redefined
    # Redefining what facts do is an admin's: a read-write key may read the catalogue, not change it.
    key = (await c.post("/v1/keys", json={"name": "rw", "scopes": ["read", "write"]})).json()["api_key"]
    async with client_for(app, key) as rw:
        assert (await rw.get("/v1/predicates/lives_in")).status_code == 200
        assert_problem(await rw.put("/v1/predicates/lives_in", json={"cardinality": "many"}), 403)
        assert_problem(await rw.delete("/v1/predicates/lives_in"), 403)
    assert (await c.get("/v1/predicates/lives_in")).json()["source"] == "builtin"


async def test_another_orgs_catalogue_is_invisible(org: Org, make_org: OrgFactory) -> None:
    other = await make_org()
    await _put(org.client, "lives_in", cardinality="many")
    await _put(org.client, "collects", cardinality="one", description="org A's own")
    b = other.client
    assert (await b.get("/v1/predicates/lives_in")).json()["source"] == "builtin"
    assert_problem(await b.get("/v1/predicates/collects"), 404)
    assert_problem(await b.delete("/v1/predicates/collects"), 404)
    listed = (await b.get("/v1/predicates", params={"limit": 200})).json()["data"]
    assert "collects" not in {p["name"] for p in listed} and all(p["source"] == "builtin" for p in listed)
    # B's facts follow the built-ins, whatever A set.
    await _fact(b, subject="eve", predicate="lives_in", object="Graz")
    assert (await _fact(b, subject="eve", predicate="lives_in", object="Linz"))["action"] == "INVALIDATE"
    await _fact(b, subject="eve", predicate="collects", object="stamps")
    assert (await _fact(b, subject="eve", predicate="collects", object="coins"))["action"] == "ADD"
    # B defining the same name is B's own; A's stays as A set it.
    await _put(b, "collects", cardinality="many")
    assert (await org.client.get("/v1/predicates/collects")).json()["cardinality"] == "one"
