"""The MCP tools over streamable HTTP at /mcp, driven by the MCP SDK's own client against the in-process app."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from mcp.shared.exceptions import MCPError

from tests.conftest import Org, OrgFactory, assert_problem, client_for
from tests.mcp.conftest import data, error, parsed, served, text

TOOLS = {
    "add_memory",
    "add_messages",
    "search",
    "get_context",
    "list_memories",
    "delete_memory",
    "add_fact",
    "query_facts",
    "graph_neighbors",
    "search_documents",
    "heartbeat",
    "claim_task",
    "update_task",
    "complete_task",
    "send_message",
    "read_inbox",
    "offload_context",
    "restore_context",
}


async def test_every_tool_is_listed_and_described_for_a_model(app: FastAPI, org: Org) -> None:
    async with served(app) as connect, connect(org.key) as client:
        listed = (await client.list_tools()).tools
        assert client.server_info is not None and client.server_info.name == "engram"
        assert "search" in (client.instructions or "")
    assert {t.name for t in listed} == TOOLS
    for tool in listed:
        assert tool.description and len(tool.description) > 80, tool.name
        assert tool.output_schema is not None, tool.name
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint == (
            tool.name.startswith(("search", "get_", "list_", "query_", "graph_", "restore_"))
        )
    deleting = next(t for t in listed if t.name == "delete_memory")
    assert deleting.annotations is not None and deleting.annotations.destructive_hint


async def test_a_memory_is_stored_recalled_in_context_listed_and_forgotten(app: FastAPI, org: Org) -> None:
    async with served(app) as connect, connect(org.key) as client:
        added = await client.call_tool(
            "add_memory",
            {"content": "Prefers green tea over coffee", "type": "preference", "external_user_id": "alice"},
        )
        memory = data(added)
        assert memory["content"] == "Prefers green tea over coffee" and memory["type"] == "preference"
        assert parsed(added)["id"] == memory["id"]  # the text the model reads is the same record, compact
        assert "deleted_at" not in parsed(added)

        found = data(
            await client.call_tool("search", {"query": "what does alice like to drink?", "external_user_id": "alice"})
        )
        assert found["results"][0]["id"] == memory["id"]
        nobody = data(await client.call_tool("search", {"query": "green tea", "external_user_id": "bob"}))
        assert nobody["results"] == []

        context = await client.call_tool(
            "get_context", {"query": "what to offer alice to drink", "external_user_id": "alice"}
        )
        block = data(context)
        assert "Prefers green tea over coffee" in text(context) and text(context) == block["context"]
        assert any(c["id"] == memory["id"] for c in block["citations"])

        listed = data(await client.call_tool("list_memories", {"external_user_id": "alice"}))
        assert [m["id"] for m in listed["data"]] == [memory["id"]]

        gone = data(await client.call_tool("delete_memory", {"memory_id": memory["id"]}))
        assert gone == {"id": memory["id"], "erased": False}
        found = data(await client.call_tool("search", {"query": "green tea", "external_user_id": "alice"}))
        assert found["results"] == []
        assert data(await client.call_tool("list_memories", {"external_user_id": "alice"}))["data"] == []
    r = await org.client.get(f"/v1/memories/{memory['id']}")
    assert r.json()["state"] == "deleted"  # the same service as the REST API: a soft delete, with history


@pytest.mark.usefixtures("worker")
async def test_messages_start_a_session_continue_it_and_are_extracted(app: FastAPI, org: Org) -> None:
    async with served(app) as connect, connect(org.key) as client:
        first = data(
            await client.call_tool(
                "add_messages",
                {
                    "messages": [
                        {"role": "user", "content": "I adopted a beagle called Biscuit last week", "name": "Carol"},
                        {"role": "assistant", "content": "Congratulations! How is Biscuit settling in?"},
                    ],
                    "external_user_id": "carol",
                    "title": "Pets",
                },
            )
        )
        assert len(first["message_ids"]) == 2 and first["job"]["status"] in ("queued", "running", "succeeded")
        more = data(
            await client.call_tool(
                "add_messages",
                {
                    "session_id": first["session_id"],
                    "messages": [{"role": "user", "content": "He already knows how to sit", "name": "Carol"}],
                    "wait_for_extraction": True,
                },
            )
        )
        assert more["session_id"] == first["session_id"] and more["job"]["status"] == "succeeded"
        learnt = data(await client.call_tool("list_memories", {"external_user_id": "carol"}))["data"]
        assert any(m["source"] == "extraction" and "Biscuit" in m["content"] for m in learnt), learnt
        found = data(
            await client.call_tool(
                "search",
                {"query": "what is the name of carol's dog?", "types": ["messages"], "external_user_id": "carol"},
            )
        )
        assert found["results"][0]["id"] == first["message_ids"][0]
        refused = error(
            await client.call_tool(
                "add_messages",
                {
                    "session_id": first["session_id"],
                    "external_user_id": "dave",
                    "messages": [{"role": "user", "content": "x"}],
                },
            )
        )
        assert "leave out the user" in refused
    session = (await org.client.get(f"/v1/sessions/{first['session_id']}")).json()
    assert session["title"] == "Pets" and session["message_count"] == 3


async def test_facts_answer_what_was_true_when_and_the_graph_around_an_entity(app: FastAPI, org: Org) -> None:
    lives = {"subject": "Alice", "predicate": "lives_in", "object_is_entity": True, "single_valued": True}
    async with served(app) as connect, connect(org.key) as client:
        first = data(
            await client.call_tool(
                "add_fact",
                {
                    **lives,
                    "subject_type": "person",
                    "object": "Lisbon",
                    "object_type": "place",
                    "valid_from": "2020-01-01",
                },
            )
        )
        assert first["action"] == "ADD"
        second = data(
            await client.call_tool(
                "add_fact", {**lives, "object": "Porto", "object_type": "place", "valid_from": "2024-06-01T00:00:00Z"}
            )
        )
        assert second["action"] == "INVALIDATE" and second["invalidated"] == [first["fact"]["id"]]
        await client.call_tool(
            "add_fact",
            {"subject": "Alice", "predicate": "works_at", "object": "Globex", "object_is_entity": True},
        )

        then = data(await client.call_tool("query_facts", {"subject": "alice", "valid_at": "2022-03-01T00:00:00Z"}))
        assert {f["object"] for f in then["data"]} == {"Lisbon", "Globex"}
        now = data(await client.call_tool("query_facts", {"subject": "Alice", "predicate": "lives_in"}))
        current = {f["object"]: f for f in now["data"]}
        assert current["Porto"]["valid_until"] is None and current["Lisbon"]["valid_until"].startswith("2024-06-01")

        hood = data(await client.call_tool("graph_neighbors", {"entity": "Alice"}))
        assert sorted(e["name"] for e in hood["entities"]) == ["Alice", "Globex", "Porto"]
        back_then = data(await client.call_tool("graph_neighbors", {"entity": "alice", "valid_at": "2021-01-01"}))
        assert sorted(e["name"] for e in back_then["entities"]) == ["Alice", "Globex", "Lisbon"]
        by_id = data(await client.call_tool("graph_neighbors", {"entity": hood["entity_id"], "depth": 2}))
        assert by_id["entity_id"] == hood["entity_id"]
        assert "no entity is named" in error(await client.call_tool("graph_neighbors", {"entity": "Zebulon"}))
        assert data(await client.call_tool("query_facts", {"external_user_id": "nobody-yet"}))["data"] == []


async def test_documents_are_searched_with_citations(app: FastAPI, org: Org) -> None:
    guide = (
        "# Handbook\n\nWelcome.\n\n## Install\n\nRun `pip install engramdb` and then `engramdb serve`.\n\n"
        "## Holidays\n\nEveryone gets 25 days of paid leave a year.\n"
    )
    r = await org.client.post("/v1/documents", json={"content": guide, "path": "docs/handbook.md"})
    assert r.status_code == 201, r.text
    async with served(app) as connect, connect(org.key) as client:
        found = data(await client.call_tool("search_documents", {"query": "how many vacation days do I get?"}))
        best = found["results"][0]
        assert best["type"] == "chunk" and "25 days" in best["content"]
        # Cited where the answer is: its own section (a chunk no longer spans the whole file's headings).
        assert best["path"] == "docs/handbook.md" and best["citation"].startswith("docs/handbook.md, section Holidays")
        assert (
            data(await client.call_tool("search_documents", {"query": "leave", "path_prefix": "src/"}))["results"] == []
        )


async def test_bad_input_comes_back_as_an_error_result_the_model_can_read(app: FastAPI, org: Org) -> None:
    async with served(app) as connect, connect(org.key) as client:
        assert "content" in error(await client.call_tool("add_memory", {"content": ""}))
        assert "query" in error(await client.call_tool("search", {}))
        assert "types" in error(await client.call_tool("search", {"query": "x", "types": ["everything"]}))
        no_scope = error(await client.call_tool("get_context", {"query": "anything"}))
        assert "name a session_id, a user_id or an external_user_id" in no_scope
        predicate = error(
            await client.call_tool("add_fact", {"subject": "A", "predicate": "drop table;", "object": "B"})
        )
        assert "Validation failed (422)" in predicate and "predicate" in predicate
        missing = error(await client.call_tool("delete_memory", {"memory_id": "01a20000-0000-7000-8000-000000000000"}))
        assert missing.startswith("Error executing tool delete_memory: Not found (404)")
        both = error(await client.call_tool("add_memory", {"content": "x", "user_id": org.id, "external_user_id": "a"}))
        assert "not both" in both
        # The server is still there after every refusal.
        assert data(await client.call_tool("list_memories", {}))["data"] == []


async def test_no_key_or_a_bad_key_is_401_before_any_mcp(app: FastAPI, org: Org) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    async with served(app) as connect:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engram.test") as anon:
            body = assert_problem(await anon.post("/mcp", json=initialize, headers=accept), 401)
            assert "Authorization: Bearer" in str(body["detail"])
            r = await anon.post("/mcp", json=initialize, headers={**accept, "Authorization": "Bearer egm_nope"})
            assert_problem(r, 401)
            assert r.headers["www-authenticate"] == "Bearer"
        with pytest.RaisesGroup(MCPError, flatten_subgroups=True):  # the SDK's client gets the 401, goes no further
            async with connect("egm_abcdefghijkl_" + "x" * 40) as client:
                await client.list_tools()


async def test_a_key_sees_only_its_organization_and_a_revoked_key_stops_at_once(
    app: FastAPI, make_org: OrgFactory
) -> None:
    a, b = await make_org(), await make_org()
    async with served(app) as connect:
        async with connect(a.key) as client_a:
            memory = data(await client_a.call_tool("add_memory", {"content": "The vault code is 7391"}))
        async with connect(b.key) as client_b:
            assert data(await client_b.call_tool("search", {"query": "vault code"}))["results"] == []
            assert data(await client_b.call_tool("list_memories", {}))["data"] == []
            assert "Not found (404)" in error(await client_b.call_tool("delete_memory", {"memory_id": memory["id"]}))
        assert (await a.client.get(f"/v1/memories/{memory['id']}")).json()["state"] == "active"

        r = await a.client.post("/v1/keys", json={"name": "short-lived", "scopes": ["read"]})
        short = r.json()
        async with connect(short["api_key"]) as reader:
            assert data(await reader.call_tool("search", {"query": "vault code"}))["results"][0]["id"] == memory["id"]
            refused = error(await reader.call_tool("add_memory", {"content": "nope"}))
            assert "Permission denied (403)" in refused and "'write' scope" in refused
            await a.client.post(f"/v1/keys/{short['id']}/revoke")
            with pytest.raises(MCPError, match="error response"):  # the very next request is refused
                await reader.call_tool("search", {"query": "vault code"})
        async with client_for(app, short["api_key"]) as revoked:
            r = await revoked.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
            assert "revoked" in str(assert_problem(r, 401)["detail"])


async def test_a_user_bound_key_is_one_users_memory(app: FastAPI, org: Org) -> None:
    async with served(app) as connect, connect(org.key) as admin:
        mine = data(
            await admin.call_tool("add_memory", {"content": "Erin plays the cello", "external_user_id": "erin"})
        )
        data(await admin.call_tool("add_memory", {"content": "Frank plays the cello too", "external_user_id": "frank"}))
        r = await org.client.post("/v1/keys", json={"name": "erin's agent", "user_id": mine["user_id"]})
        bound = r.json()["api_key"]
        async with connect(bound) as client:
            added = data(await client.call_tool("add_memory", {"content": "Erin practises every morning"}))
            assert added["user_id"] == mine["user_id"]
            found = data(await client.call_tool("search", {"query": "who plays the cello?"}))
            assert {hit["user_id"] for hit in found["results"]} == {mine["user_id"]}
            assert len(found["results"]) == 2
            context = await client.call_tool("get_context", {"query": "what instrument?"})
            assert "cello" in text(context) and "Frank" not in text(context)
            other = error(await client.call_tool("add_memory", {"content": "x", "external_user_id": "frank"}))
            assert "Permission denied (403)" in other
    # Through REST, the same key sees the same memories: one set of rules.
    bound_rest = client_for(app, bound)
    listed = (await bound_rest.get("/v1/memories")).json()["data"]
    assert {m["content"] for m in listed} == {"Erin plays the cello", "Erin practises every morning"}
    await bound_rest.aclose()


async def test_agents_claim_complete_and_message_over_mcp(app: FastAPI, org: Org) -> None:
    """An agent-bound key is the agent: no agent arguments needed."""
    worker = (await org.client.post("/v1/agents", json={"name": "mcp-worker"})).json()
    planner = (await org.client.post("/v1/agents", json={"name": "mcp-planner"})).json()
    task = (await org.client.post("/v1/tasks", json={"title": "mcp task", "queue": "mcp"})).json()
    key = (await org.client.post("/v1/keys", json={"name": "mcp-worker", "agent_id": worker["id"]})).json()["api_key"]
    async with served(app) as connect, connect(key) as client:
        assert data(await client.call_tool("heartbeat", {"status": "busy"}))["status"] == "busy"
        claimed = data(await client.call_tool("claim_task", {"queue": "mcp", "lease_s": 30}))["task"]
        assert claimed["id"] == task["id"]
        extended = data(await client.call_tool("update_task", {"task_id": task["id"], "lease_id": claimed["lease_id"]}))
        assert extended["state"] == "working"
        done = {"task_id": task["id"], "lease_id": claimed["lease_id"], "result_data": {"ok": True}}
        assert data(await client.call_tool("complete_task", done))["state"] == "completed"
        sent = data(await client.call_tool("send_message", {"to_agent_id": planner["id"], "payload": {"done": 1}}))
        assert sent["from_agent_id"] == worker["id"]
        assert data(await client.call_tool("read_inbox", {}))["data"] == []
    inbox = (await org.client.get(f"/v1/agents/{planner['id']}/inbox")).json()["data"]
    assert [m["payload"] for m in inbox] == [{"done": 1}]
