"""Directory updates: a null for a field that cannot be empty is a 422 naming it (never a 500), and an
inactive app takes no new data."""

from __future__ import annotations

import pytest

from tests.conftest import Org, assert_problem


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("teams", {"name": "t"}, "name"),
        ("apps", {"name": "a"}, "name"),
        ("apps", {"name": "b"}, "is_active"),
        ("agents", {"name": "g"}, "name"),
    ],
)
async def test_null_for_a_required_field_is_a_422_naming_it(
    org: Org, kind: str, body: dict[str, str], field: str
) -> None:
    c = org.client
    made = (await c.post(f"/v1/{kind}", json=body)).json()
    problem = assert_problem(await c.patch(f"/v1/{kind}/{made['id']}", json={field: None}), 422)
    assert field in str(problem)
    assert (await c.get(f"/v1/{kind}/{made['id']}")).json()[field] == made[field]


async def test_an_inactive_app_takes_no_new_data(org: Org) -> None:
    c = org.client
    app = (await c.post("/v1/apps", json={"name": "crm"})).json()
    kept = (await c.post("/v1/memories", json={"content": "before", "app_id": app["id"]})).json()
    assert (await c.patch(f"/v1/apps/{app['id']}", json={"is_active": False})).json()["is_active"] is False
    for path, body in (
        ("/v1/sessions", {"app_id": app["id"]}),
        ("/v1/memories", {"content": "after", "app_id": app["id"]}),
        ("/v1/documents", {"content": "a page", "app_id": app["id"]}),
        ("/v1/repositories", {"name": "docs", "app_id": app["id"]}),
    ):
        problem = assert_problem(await c.post(path, json=body), 409)
        assert "inactive" in str(problem["detail"])
    assert (await c.get(f"/v1/memories/{kept['id']}")).status_code == 200
    assert (await c.patch(f"/v1/apps/{app['id']}", json={"is_active": True})).status_code == 200
    assert (await c.post("/v1/sessions", json={"app_id": app["id"]})).status_code == 201
