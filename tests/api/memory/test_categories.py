"""Categories are a list like every other: ``{data, next_cursor}``, by name, paged with a cursor."""

from __future__ import annotations

from engramdb.services.memory.categories import BUILTIN
from engramdb.storage.pagination import encode_cursor
from tests.conftest import Org, assert_problem


async def test_categories_are_a_page_by_name_and_an_own_category_replaces_a_built_in(org: Org) -> None:
    c = org.client
    for name in ("zoology", "family"):
        body = {"name": name, "description": f"all about {name}"}
        assert (await c.post("/v1/categories", json=body)).status_code == 201
    whole = (await c.get("/v1/categories")).json()
    assert whole["next_cursor"] is None
    names = [x["name"] for x in whole["data"]]
    assert names == sorted({*BUILTIN, "zoology"})
    (family,) = [x for x in whole["data"] if x["name"] == "family"]
    assert family["builtin"] is False and family["description"] == "all about family"
    paged: list[dict[str, object]] = []
    cursor = None
    while True:
        page = (await c.get("/v1/categories", params={"limit": 5, **({"cursor": cursor} if cursor else {})})).json()
        assert len(page["data"]) <= 5
        paged += page["data"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert paged == whole["data"]
    for cursor in ("nonsense", encode_cursor([5])):
        assert_problem(await c.get("/v1/categories", params={"cursor": cursor}), 400)
    assert_problem(await c.get("/v1/categories", params={"limit": 0}), 422)
