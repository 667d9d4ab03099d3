"""The offloaded-context tools over MCP: offload text, find it by search, restore it piece by piece."""

from __future__ import annotations

from fastapi import FastAPI

from tests.conftest import Org
from tests.mcp.conftest import data, error, served

TRANSCRIPT = "\n".join(f"turn {i}: the deploy of build {4400 + i} to the staging cluster went fine" for i in range(400))


async def test_a_context_is_offloaded_found_and_restored_in_pieces(app: FastAPI, org: Org) -> None:
    async with served(app) as connect, connect(org.key) as client:
        made = data(
            await client.call_tool(
                "offload_context",
                {"content": TRANSCRIPT, "title": "Staging deploy log", "external_user_id": "ops"},
            )
        )
        ctx = made["context"]
        assert made["action"] == "created" and ctx["original_bytes"] == len(TRANSCRIPT.encode())
        again = data(await client.call_tool("offload_context", {"content": TRANSCRIPT, "external_user_id": "ops"}))
        assert again["action"] == "unchanged" and again["context"]["id"] == ctx["id"]
        found = data(
            await client.call_tool(
                "search", {"query": "staging deploy log", "types": ["contexts"], "external_user_id": "ops"}
            )
        )
        assert [r["id"] for r in found["results"]] == [ctx["id"]]
        pieces, offset = [], 0
        while offset is not None:
            piece = data(
                await client.call_tool(
                    "restore_context", {"context_id": ctx["id"], "offset": offset, "max_chars": 9000}
                )
            )
            assert piece["base64"] is None and piece["context"]["id"] == ctx["id"]
            pieces.append(piece["text"])
            offset = piece["next_offset"]
        assert len(pieces) > 1 and "".join(pieces) == TRANSCRIPT
        missing = error(
            await client.call_tool("restore_context", {"context_id": "00000000-0000-0000-0000-000000000000"})
        )
        assert "404" in missing
