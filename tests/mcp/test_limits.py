"""MCP tool calls count against the same per-key and per-organization rate limits as the REST API, in the
class of the route doing the same work; a refused call is an error result saying when to come back."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from engramdb.api.admission import SPECIAL_CLASSES as ROUTE_SPECIALS
from engramdb.config import Settings
from engramdb.mcp.server import ROUTE_CLASSES
from tests.conftest import Org, OrgFactory, assert_problem
from tests.mcp.conftest import data, error, served

WINDOW_S = 86_400  # a day: a test never straddles two windows


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        rate_limit_window_s=WINDOW_S,
        rate_limit_searches=2,
        org_rate_limit_writes=3,
    )


async def test_tool_calls_use_up_the_keys_limit_shared_with_the_rest_api(app: FastAPI, org: Org) -> None:
    async with served(app) as connect, connect(org.key) as client:
        for _ in range(3):  # listing the tools is not a tool call: it counts nowhere
            await client.list_tools()
        data(await client.call_tool("search", {"query": "tea"}))
        data(
            await client.call_tool("get_context", {"query": "tea", "external_user_id": "ann"})
        )  # a search too: the limit is now used up
        refused = error(await client.call_tool("search_documents", {"query": "tea"}))
        assert refused.startswith(
            "Error executing tool search_documents: Too many requests (429): this API key's limit of 2 searches"
        )
        assert "retry after" in refused
        data(await client.call_tool("list_memories", {}))  # reads have no limit here
    assert_problem(await org.client.post("/v1/search", json={"query": "tea"}), 429)  # one counter, both ways


async def test_an_organizations_limit_covers_its_keys_on_both_transports(app: FastAPI, make_org: OrgFactory) -> None:
    org = await make_org()
    assert (await org.client.post("/v1/teams", json={"name": "first"})).status_code == 201
    async with served(app) as connect, connect(org.key) as client:
        data(await client.call_tool("add_memory", {"content": "Likes green tea"}))
        data(await client.call_tool("add_fact", {"subject": "Ann", "predicate": "likes", "object": "tea"}))
        refused = error(await client.call_tool("delete_memory", {"memory_id": "00000000-0000-4000-8000-000000000000"}))
        assert "your organization's limit of 3 writes requests" in refused


def test_every_tool_counts_in_the_class_of_its_rest_route() -> None:
    assert ROUTE_CLASSES["search"] == ROUTE_SPECIALS["search"] == "searches"
    assert ROUTE_CLASSES["get_context"] == ROUTE_SPECIALS["assemble_context"] == "searches"
    assert ROUTE_CLASSES["add_messages"] == ROUTE_SPECIALS["add_messages"] == "extraction"
    assert ROUTE_CLASSES["list_memories"] == "reads" and ROUTE_CLASSES["delete_memory"] == "writes"
