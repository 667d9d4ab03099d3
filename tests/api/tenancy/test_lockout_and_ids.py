"""An organization cannot be locked out by a key that will expire; a key is valid when it is made; external
ids are compared exactly (white space around one is refused, never trimmed into another user)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Org, assert_problem


async def test_an_expiring_admin_key_does_not_count_as_the_orgs_way_back_in(org: Org) -> None:
    c = org.client
    soon = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()  # expiring, whatever the machine's load
    expiring = await c.post("/v1/keys", json={"name": "temporary", "scopes": ["admin"], "expires_at": soon})
    assert expiring.status_code == 201
    keys = (await c.get("/v1/keys")).json()["data"]
    lasting = next(k for k in keys if k["id"] != expiring.json()["id"])
    body = assert_problem(await c.post(f"/v1/keys/{lasting['id']}/revoke"), 409)
    assert "does not expire" in str(body["detail"])
    assert (await c.get("/v1/keys")).status_code == 200  # the lasting key still works
    # With another admin key that does not expire, the first may go.
    spare = (await c.post("/v1/keys", json={"name": "spare", "scopes": ["admin"]})).json()
    assert spare["expires_at"] is None
    assert (await c.post(f"/v1/keys/{lasting['id']}/revoke")).json()["revoked_at"] is not None


async def test_a_key_cannot_be_created_already_expired(org: Org) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    body = assert_problem(await org.client.post("/v1/keys", json={"name": "late", "expires_at": past}), 422)
    assert "expires_at" in str(body)


@pytest.mark.parametrize("bad", [" alice", "alice ", "alice\n", "\talice", "ali\tce"])
async def test_external_ids_with_white_space_around_them_are_refused(org: Org, bad: str) -> None:
    c = org.client
    assert (await c.post("/v1/users", json={"external_id": "alice"})).status_code == 201
    assert_problem(await c.post("/v1/users", json={"external_id": bad}), 422)
    assert_problem(await c.post("/v1/sessions", json={"external_user_id": bad}), 422)
    assert_problem(await c.post("/v1/memories", json={"external_user_id": bad, "content": "x"}), 422)
    fact = {"subject": "a", "predicate": "likes", "object": "b", "external_user_id": bad}
    assert_problem(await c.post("/v1/facts", json=fact), 422)
    users = (await c.get("/v1/users")).json()["data"]
    assert [u["external_id"] for u in users] == ["alice"]
