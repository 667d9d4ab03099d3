"""Grants apply to MCP tools as to REST: every tool call reads the key's grants afresh."""

from __future__ import annotations

from fastapi import FastAPI

from tests.conftest import Org
from tests.mcp.conftest import data, served


async def test_an_agent_finds_what_is_shared_with_it_until_it_is_revoked(app: FastAPI, org: Org) -> None:
    c = org.client
    alice = (await c.post("/v1/users", json={"external_id": "alice"})).json()["id"]
    agent = (await c.post("/v1/agents", json={"name": "support-bot"})).json()["id"]
    body = {"user_id": alice, "content": "Alice's router needs a firmware reset", "tags": ["support"]}
    shared = (await c.post("/v1/memories", json=body)).json()["id"]
    await c.post("/v1/memories", json={**body, "content": "Alice's router password", "tags": ["private"]})
    key = (await c.post("/v1/keys", json={"name": "bot", "agent_id": agent})).json()["api_key"]
    query = {"query": "Alice's router", "external_user_id": "alice"}
    async with served(app) as connect, connect(key) as client:
        assert data(await client.call_tool("search", query))["results"] == []
        grant = {"grantee_agent_id": agent, "resource": "memories", "owner_user_id": alice, "tags": ["support"]}
        made = (await c.post("/v1/grants", json=grant)).json()
        found = data(await client.call_tool("search", query))["results"]
        assert [r["id"] for r in found] == [shared]
        await c.delete(f"/v1/grants/{made['id']}")
        assert data(await client.call_tool("search", query))["results"] == []
