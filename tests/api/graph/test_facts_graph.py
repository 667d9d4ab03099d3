"""Facts (bi-temporal, with contradiction handling) and the entity graph, through the API."""

from __future__ import annotations

import httpx

from tests.conftest import Org, assert_problem


async def _fact(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    r = await client.post("/v1/facts", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, object] = r.json()
    return out


async def _user(client: httpx.AsyncClient, external_id: str) -> str:
    r = await client.post("/v1/users", json={"external_id": external_id, "display_name": external_id})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _objects(client: httpx.AsyncClient, **params: str) -> list[str]:
    r = await client.get("/v1/facts", params=params)
    assert r.status_code == 200, r.text
    return sorted(str(f["object"]) for f in r.json()["data"])


async def test_a_contradiction_closes_the_old_fact_and_as_of_answers_before_and_after(org: Org) -> None:
    c = org.client
    user = await _user(c, "alice")
    base = {
        "subject": "Alice",
        "predicate": "lives_in",
        "object_is_entity": True,
        "single_valued": True,
        "user_id": user,
    }
    first = await _fact(c, **base, object="Lisbon", object_type="place", valid_from="2024-01-01T00:00:00Z")
    assert first["action"] == "ADD"
    r = await c.get("/v1/facts", params={"subject": "alice"})
    believed_before = r.json()["data"][0]["recorded_at"]

    second = await _fact(c, **base, object="Porto", object_type="place", valid_from="2025-06-01T00:00:00Z")
    assert second["action"] == "INVALIDATE"
    assert second["invalidated"] == [first["fact"]["id"]]  # type: ignore[index]

    # Event time: what was true when.
    assert await _objects(c, subject="Alice", valid_at="2024-06-01T00:00:00Z") == ["Lisbon"]
    assert await _objects(c, subject="Alice", valid_at="2025-07-01T00:00:00Z") == ["Porto"]
    assert await _objects(c, subject="Alice", valid_at="2023-01-01T00:00:00Z") == []
    # Now (current beliefs): the closed Lisbon version and the open Porto one.
    r = await c.get("/v1/facts", params={"subject": "Alice"})
    now = {f["object"]: f for f in r.json()["data"]}
    assert now["Lisbon"]["valid_until"].startswith("2025-06-01")
    assert now["Porto"]["valid_until"] is None
    # System time: what Engram believed right after the first fact: Lisbon, open-ended.
    r = await c.get("/v1/facts", params={"subject": "Alice", "known_at": believed_before})
    (then,) = r.json()["data"]
    assert then["object"] == "Lisbon" and then["valid_until"] is None
    # History keeps every version: the original Lisbon, its closed copy, and Porto.
    r = await c.get("/v1/facts", params={"subject": "Alice", "include_history": "true"})
    history = r.json()["data"]
    assert len(history) == 3
    assert sum(1 for f in history if f["superseded_at"] is not None) == 1


async def test_a_repeat_is_a_noop_that_adds_weight_and_late_old_news_does_not_close_the_new(org: Org) -> None:
    c = org.client
    base = {"subject": "Bob", "predicate": "works at", "object_is_entity": True, "single_valued": True}
    await _fact(c, **base, object="Acme", valid_from="2025-01-01T00:00:00Z")
    again = await _fact(c, **base, object="acme")
    assert again["action"] == "NOOP"
    assert again["fact"]["weight"] == 2  # type: ignore[index]
    assert again["fact"]["predicate"] == "works_at"  # type: ignore[index]
    # An older job, imported late: it ended when the current one began, and the current one stays open.
    late = await _fact(c, **base, object="Initech", valid_from="2020-01-01T00:00:00Z")
    assert late["action"] == "ADD"
    assert late["fact"]["valid_until"].startswith("2025-01-01")  # type: ignore[index]
    assert await _objects(c, subject="Bob", valid_at="2022-01-01T00:00:00Z") == ["Initech"]
    assert await _objects(c, subject="Bob", valid_at="2026-01-01T00:00:00Z") == ["Acme"]


async def test_multi_valued_predicates_accumulate_and_retraction_keeps_history(org: Org) -> None:
    c = org.client
    await _fact(c, subject="Cara", predicate="likes", object="hiking")
    liked = await _fact(c, subject="Cara", predicate="likes", object="jazz")
    assert liked["action"] == "ADD"
    assert await _objects(c, subject="Cara") == ["hiking", "jazz"]
    fact_id = liked["fact"]["id"]  # type: ignore[index]
    r = await c.delete(f"/v1/facts/{fact_id}")
    assert r.status_code == 200 and r.json()["superseded_at"] is not None
    assert await _objects(c, subject="Cara") == ["hiking"]
    r = await c.get(f"/v1/facts/{fact_id}")
    assert r.status_code == 200


async def test_bad_facts_are_rejected(org: Org) -> None:
    c = org.client
    r = await c.post("/v1/facts", json={"subject": "A", "predicate": "x", "object": ""})
    assert_problem(r, 422)
    r = await c.post(
        "/v1/facts",
        json={"subject": "A", "predicate": "p", "object": "B", "valid_from": "2025-01-01", "valid_until": "2024-01-01"},
    )
    assert_problem(r, 422)
    r = await c.post("/v1/facts", json={"subject": "A", "predicate": "drop table;", "object": "B"})
    assert_problem(r, 422)


async def test_the_graph_answers_neighbours_and_paths(org: Org) -> None:
    c = org.client
    edge = {"object_is_entity": True, "subject_type": "person"}
    await _fact(c, subject="Dana", predicate="sister", object="Eve", object_type="person", **edge)
    await _fact(c, subject="Eve", predicate="works_at", object="Globex", object_type="organization", **edge)
    await _fact(c, subject="Globex", predicate="located_in", object="Springfield", object_type="place", **edge)
    await _fact(c, subject="Dana", predicate="likes", object="chess")  # not an edge: a literal object
    r = await c.get("/v1/entities", params={"q": "dana"})
    (dana,) = r.json()["data"]
    assert dana["type"] == "person"

    r = await c.get(f"/v1/entities/{dana['id']}/neighbors", params={"depth": 1})
    assert r.status_code == 200, r.text
    assert [e["name"] for e in r.json()["entities"]] == ["Dana", "Eve"]
    r = await c.get(f"/v1/entities/{dana['id']}/neighbors", params={"depth": 3})
    hood = r.json()
    names = {e["id"]: e["name"] for e in hood["entities"]}
    assert sorted(names.values()) == ["Dana", "Eve", "Globex", "Springfield"]
    assert {names[k]: v for k, v in hood["distances"].items()} == {"Dana": 0, "Eve": 1, "Globex": 2, "Springfield": 3}
    assert len(hood["edges"]) == 3

    r = await c.get("/v1/entities", params={"q": "springfield"})
    target = r.json()["data"][0]["id"]
    r = await c.get(f"/v1/entities/{dana['id']}/paths/{target}")
    (path,) = r.json()["paths"]
    assert [e["name"] for e in path["entities"]] == ["Dana", "Eve", "Globex", "Springfield"]
    assert [e["predicate"] for e in path["edges"]] == ["sister", "works_at", "located_in"]
    r = await c.get(f"/v1/entities/{dana['id']}/paths/{target}", params={"max_depth": 2})
    assert r.json()["paths"] == []
    r = await c.get(f"/v1/entities/{dana['id']}/neighbors", params={"depth": 9})
    assert_problem(r, 422)


async def test_merge_and_split_keep_every_link(org: Org) -> None:
    c = org.client
    a = await _fact(c, subject="Robert", predicate="plays", object="Guitar", object_is_entity=True)
    b = await _fact(c, subject="Bobby", predicate="owns", object="Cat", object_is_entity=True)
    robert = a["fact"]["subject_id"]  # type: ignore[index]
    bobby = b["fact"]["subject_id"]  # type: ignore[index]
    r = await c.post(f"/v1/entities/{robert}/merge", json={"entity_ids": [bobby]})
    assert r.status_code == 200, r.text
    assert r.json()["aliases"] == ["Bobby"]
    r = await c.get("/v1/facts", params={"entity_id": robert})
    assert sorted(f["predicate"] for f in r.json()["data"]) == ["owns", "plays"]
    r = await c.get(f"/v1/entities/{bobby}")
    assert r.json()["merged_into"] == robert
    # The old name now resolves to the merged entity.
    again = await _fact(c, subject="bobby", predicate="owns", object="cat", object_is_entity=True)
    assert again["action"] == "NOOP"
    r = await c.post(f"/v1/entities/{robert}/merge", json={"entity_ids": [bobby]})
    assert_problem(r, 409)

    owns = b["fact"]["id"]  # type: ignore[index]
    r = await c.post(f"/v1/entities/{robert}/split", json={"name": "Bobby", "fact_ids": [owns], "aliases": ["Bobby"]})
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    r = await c.get("/v1/facts", params={"entity_id": new_id})
    assert [f["predicate"] for f in r.json()["data"]] == ["owns"]
    r = await c.get(f"/v1/entities/{robert}")
    assert r.json()["aliases"] == []


async def test_categories_builtin_and_custom(org: Org) -> None:
    c = org.client
    r = await c.get("/v1/categories")
    names = {x["name"] for x in r.json()["data"]}
    assert {"family", "work", "health"} <= names
    r = await c.post("/v1/categories", json={"name": "gardening", "description": "plants, gardens, growing vegetables"})
    assert r.status_code == 201, r.text
    cat_id = r.json()["id"]
    r = await c.post("/v1/categories", json={"name": "gardening", "description": "again"})
    assert_problem(r, 409)
    r = await c.post("/v1/categories", json={"name": "Bad Name", "description": "x y z"})
    assert_problem(r, 422)
    r = await c.patch(f"/v1/categories/{cat_id}", json={"description": "plants and gardens"})
    assert r.json()["description"] == "plants and gardens"
    r = await c.delete(f"/v1/categories/{cat_id}")
    assert r.status_code == 204


async def test_paths_are_the_shortest_even_in_a_dense_graph(org: Org) -> None:
    c = org.client
    names = [f"Node{i}" for i in range(9)]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for predicate in ("knows", "met"):  # parallel facts between each pair
                await _fact(c, subject=a, predicate=predicate, object=b, object_is_entity=True)
    r = await c.get("/v1/entities", params={"q": "node0"})
    start = r.json()["data"][0]["id"]
    r = await c.get("/v1/entities", params={"q": "node8"})
    end = r.json()["data"][0]["id"]
    r = await c.get(f"/v1/entities/{start}/paths/{end}", params={"max_depth": 4, "limit": 20})
    assert r.status_code == 200, r.text
    (path,) = r.json()["paths"]  # the one direct link; the thousands of longer detours are not walked
    assert [e["name"] for e in path["entities"]] == ["Node0", "Node8"]


async def _lives(c: httpx.AsyncClient, who: str, city: str, start: str | None = None, end: str | None = None) -> str:
    body: dict[str, object] = {"subject": who, "predicate": "lives_in", "object": city, "single_valued": True}
    if start:
        body["valid_from"] = f"{start}T00:00:00Z"
    if end:
        body["valid_until"] = f"{end}T00:00:00Z"
    return str((await _fact(c, **body))["action"])


async def _at(c: httpx.AsyncClient, who: str, day: str) -> list[str]:
    return await _objects(c, subject=who, predicate="lives_in", valid_at=f"{day}T00:00:00Z")


async def test_moving_back_to_an_earlier_city_is_a_new_stay(org: Org) -> None:
    c = org.client
    assert await _lives(c, "Kay", "Lisbon", "2020-01-01") == "ADD"
    assert await _lives(c, "Kay", "Porto", "2022-01-01") == "INVALIDATE"
    assert await _lives(c, "Kay", "Lisbon", "2024-01-01") == "INVALIDATE"
    assert await _at(c, "Kay", "2021-01-01") == ["Lisbon"]
    assert await _at(c, "Kay", "2023-01-01") == ["Porto"]
    assert await _at(c, "Kay", "2024-06-01") == ["Lisbon"]
    assert await _lives(c, "Kay", "Porto", "2022-06-01") == "NOOP"  # said again, inside the Porto stay


async def test_an_ended_stay_does_not_end_what_holds_now(org: Org) -> None:
    c = org.client
    await _lives(c, "Lu", "Lisbon", "2020-01-01")
    # An earlier stay in the same city, and a short stay elsewhere: both recorded, the current fact stays.
    assert await _lives(c, "Lu", "Lisbon", "2010-01-01", "2012-01-01") == "ADD"
    assert await _lives(c, "Lu", "Tokyo", "2021-01-01", "2021-03-01") == "ADD"
    assert await _at(c, "Lu", "2023-01-01") == ["Lisbon"]
    assert await _at(c, "Lu", "2011-01-01") == ["Lisbon"]
    assert "Tokyo" in await _at(c, "Lu", "2021-02-01")
    # "I no longer live in Lisbon" (an end, no start): closes the open fact.
    assert await _lives(c, "Lu", "Lisbon", end="2025-01-01") == "INVALIDATE"
    assert await _at(c, "Lu", "2025-06-01") == []


async def test_undated_replacements_hold_from_when_they_were_recorded(org: Org) -> None:
    c = org.client
    await _lives(c, "Mo", "Lisbon", "2020-01-01")
    assert await _lives(c, "Mo", "Porto") == "INVALIDATE"
    assert await _at(c, "Mo", "2021-01-01") == ["Lisbon"]
    assert await _objects(c, subject="Mo", predicate="lives_in", valid_at="2100-01-01T00:00:00Z") == ["Porto"]
    # Dated news older than an undated current fact does not end it.
    await _lives(c, "Ned", "Porto")
    assert await _lives(c, "Ned", "Lisbon", "2015-01-01") == "ADD"
    assert "Lisbon" in await _at(c, "Ned", "2016-01-01")  # Porto's start is unknown: it may hold then too
    assert await _objects(c, subject="Ned", predicate="lives_in", valid_at="2100-01-01T00:00:00Z") == ["Porto"]


async def test_names_in_other_scripts_stay_apart_and_renaming_onto_a_taken_name_says_merge(org: Org) -> None:
    c = org.client
    a = await _fact(c, subject="Anna Петрова", predicate="likes", object="tea")
    b = await _fact(c, subject="Anna Иванова", predicate="likes", object="coffee")
    assert a["fact"]["subject_id"] != b["fact"]["subject_id"]  # type: ignore[index]
    same = await _fact(c, subject="ANNA ПЕТРОВА", predicate="likes", object="tea")
    assert same["action"] == "NOOP"
    r = await c.patch(f"/v1/entities/{b['fact']['subject_id']}", json={"name": "anna петрова"})  # type: ignore[index]
    body = assert_problem(r, 409)
    assert "merge" in str(body["detail"])
