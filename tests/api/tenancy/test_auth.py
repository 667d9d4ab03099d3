from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.conftest import Org, assert_problem, client_for


async def test_missing_malformed_and_unknown_keys(anon, org: Org) -> None:  # type: ignore[no-untyped-def]
    body = assert_problem(await anon.get("/v1/sessions"), 401)
    assert "Bearer" in str(body["detail"])
    for header in ("Bearer nope", "Basic abc", "Bearer egm_aaaaaaaaaaaa_wrongsecret", org.key[:-1] + "x"):
        r = await anon.get("/v1/sessions", headers={"Authorization": header})
        assert_problem(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"


async def test_key_is_stored_only_as_a_hash(org: Org, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT prefix, secret_hash FROM api_key WHERE org_id = %s", (org.id,)).fetchall()
    assert rows and all(org.key not in (p + h) and len(h) == 64 for p, h in rows)
    prefix, _ = rows[0]
    assert org.key.startswith(f"egm_{prefix}_")


@pytest.mark.parametrize(
    ("scopes", "read", "write", "admin"),
    [
        (["read"], 200, 403, 403),
        (["write"], 200, 201, 403),
        (["read", "write"], 200, 201, 403),
        (["admin"], 200, 201, 200),
    ],
)
async def test_scopes(app, org: Org, scopes: list[str], read: int, write: int, admin: int) -> None:  # type: ignore[no-untyped-def]
    key = (await org.client.post("/v1/keys", json={"name": "k", "scopes": scopes})).json()
    assert key["api_key"].startswith("egm_") and sorted(key["scopes"]) == sorted(set(scopes))
    async with client_for(app, key["api_key"]) as c:
        assert (await c.get("/v1/memories")).status_code == read
        assert (await c.post("/v1/memories", json={"content": "x"})).status_code == write
        assert (await c.get("/v1/audit")).status_code == admin
        assert (await c.post("/v1/teams", json={"name": f"t{len(scopes)}{scopes[0]}"})).status_code in (
            (201,) if admin == 200 else (403,)
        )


async def test_revoked_and_expired_keys_stop_working(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    key = (await org.client.post("/v1/keys", json={"name": "temp"})).json()
    async with client_for(app, key["api_key"]) as c:
        assert (await c.get("/v1/memories")).status_code == 200
        revoked = (await org.client.post(f"/v1/keys/{key['id']}/revoke")).json()
        assert revoked["revoked_at"]
        body = assert_problem(await c.get("/v1/memories"), 401)
        assert "revoked" in str(body["detail"])
    # A key cannot be made already expired (422); one that has run out since is refused.
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    old = (await org.client.post("/v1/keys", json={"name": "old", "expires_at": soon})).json()
    await asyncio.sleep(1.2)
    async with client_for(app, old["api_key"]) as c:
        assert "expired" in str(assert_problem(await c.get("/v1/memories"), 401)["detail"])


async def test_key_listing_never_shows_secrets_and_tracks_use(org: Org) -> None:
    await org.client.get("/v1/memories")
    listed = (await org.client.get("/v1/keys")).json()["data"]
    assert listed and all("api_key" not in k and "secret_hash" not in k for k in listed)
    assert any(k["last_used_at"] for k in listed)


async def test_last_admin_key_cannot_be_revoked(org: Org) -> None:
    (admin,) = (await org.client.get("/v1/keys")).json()["data"]
    assert_problem(await org.client.post(f"/v1/keys/{admin['id']}/revoke"), 409)
    spare = (await org.client.post("/v1/keys", json={"name": "spare", "scopes": ["admin"]})).json()
    assert (await org.client.delete(f"/v1/keys/{admin['id']}")).status_code == 200
    assert_problem(await org.client.get("/v1/keys"), 401)  # the client used the key just revoked
    assert spare["revoked_at"] is None


async def test_admin_keys_cannot_be_bound(org: Org) -> None:
    user = (await org.client.post("/v1/users", json={})).json()
    r = await org.client.post("/v1/keys", json={"name": "x", "scopes": ["admin"], "user_id": user["id"]})
    assert_problem(r, 422)


async def test_a_key_is_bound_to_a_user_by_the_apps_own_id(app, make_org) -> None:  # type: ignore[no-untyped-def]
    """``external_user_id`` names the user as every other write may: found, or created on first use, in the
    key's organization only; the key then acts as that user."""
    org, other = await make_org(), await make_org()
    theirs = (await other.client.post("/v1/users", json={"external_id": "ana"})).json()
    made = await org.client.post("/v1/keys", json={"name": "ana's", "external_user_id": "ana"})
    assert made.status_code == 201, made.text
    ana = (await org.client.get("/v1/users/by-external-id/ana")).json()
    assert made.json()["user_id"] == ana["id"] != theirs["id"]  # created here, never the other org's ana
    again = (await org.client.post("/v1/keys", json={"name": "ana's too", "external_user_id": "ana"})).json()
    assert again["user_id"] == ana["id"]
    assert len((await org.client.get("/v1/users")).json()["data"]) == 1
    async with client_for(app, made.json()["api_key"]) as c:
        assert (await c.post("/v1/sessions", json={})).json()["user_id"] == ana["id"]
    both = {"name": "x", "user_id": ana["id"], "external_user_id": "ana"}
    assert "not both" in str(assert_problem(await org.client.post("/v1/keys", json=both), 422)["errors"])
    admin = {"name": "x", "scopes": ["admin"], "external_user_id": "bo"}
    assert_problem(await org.client.post("/v1/keys", json=admin), 422)
    assert (await org.client.get("/v1/users/by-external-id/bo")).status_code == 404


async def test_key_rename(org: Org) -> None:
    key = (await org.client.post("/v1/keys", json={"name": "a"})).json()
    renamed = (await org.client.patch(f"/v1/keys/{key['id']}", json={"name": "b"})).json()
    assert renamed["name"] == "b"
    assert (await org.client.get(f"/v1/keys/{key['id']}")).json()["name"] == "b"
    listed = (await org.client.get("/v1/keys", params={"include_revoked": "true"})).json()["data"]
    assert key["id"] in [k["id"] for k in listed]


async def test_concurrent_revocations_never_lock_the_org_out(org: Org) -> None:
    import asyncio

    (first,) = (await org.client.get("/v1/keys")).json()["data"]
    second = (await org.client.post("/v1/keys", json={"name": "second", "scopes": ["admin"]})).json()
    results = await asyncio.gather(
        org.client.post(f"/v1/keys/{first['id']}/revoke"), org.client.post(f"/v1/keys/{second['id']}/revoke")
    )
    statuses = sorted(r.status_code for r in results)
    # Both revocations were sent with the first key: one of them wins, the other finds itself blocked.
    assert statuses in ([200, 409], [200, 401])
    active = [k for k in (await org.client.get("/v1/keys")).json().get("data", [])]
    assert len(active) <= 1
