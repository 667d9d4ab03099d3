"""`engramdb mcp` over stdio, as a desktop client runs it: a fresh data directory (its own embedded
PostgreSQL), a key from `engramdb init`, and the MCP SDK's stdio client storing a memory in one process
and recalling it from the next."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from engramdb.config import Settings
from tests.conftest import stop_postgres
from tests.mcp.conftest import data, error, text

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Install:
    env: dict[str, str]
    key: str


def _engramdb(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engramdb", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    data_dir = tmp_path_factory.mktemp("mcp-stdio")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env.update({"ENGRAM_DATA_DIR": str(data_dir), "ENGRAM_LOG_LEVEL": "warning"})
    done = _engramdb(env, "init", "--org", "desktop", "--json")
    assert done.returncode == 0, done.stderr
    try:
        yield Install(env=env, key=json.loads(done.stdout)["api_key"])
    finally:
        stop_postgres(data_dir / "pgdata")


def _readme_blocks() -> list[dict[str, Any]]:
    """The MCP client configuration blocks the README shows."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## MCP\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```json\n(.*?)```", section, flags=re.S)
    return [json.loads(block)["mcpServers"]["engram"] for block in blocks]


def _server(install: Install) -> StdioServerParameters:
    """The README's desktop block, run as written (with this interpreter for its `engramdb`)."""
    block = next(b for b in _readme_blocks() if "command" in b)
    assert block["command"].endswith("/engramdb") and set(block["env"]) == {"ENGRAM_API_KEY"}
    env = {k: v for k, v in install.env.items() if k.startswith("ENGRAM_")} | {"ENGRAM_API_KEY": install.key}
    return StdioServerParameters(command=sys.executable, args=["-m", "engramdb", *block["args"]], env=env)


def test_the_readme_names_the_http_endpoint_as_served() -> None:
    block = next(b for b in _readme_blocks() if "url" in b)
    assert block["url"] == f"http://127.0.0.1:{Settings.model_fields['port'].default}/mcp"
    assert block["headers"]["Authorization"].startswith("Bearer egm_")


async def test_a_desktop_client_stores_a_memory_and_the_next_session_recalls_it(install: Install) -> None:
    async with Client(_server(install), read_timeout_seconds=120) as client:
        assert len((await client.list_tools()).tools) == 18
        stored = data(
            await client.call_tool("add_memory", {"content": "My daughter's birthday is on the 14th of March"})
        )
        found = await client.call_tool("search", {"query": "when is my daughter's birthday?"})
        assert data(found)["results"][0]["id"] == stored["id"] and "14th of March" in text(found)
        refused = error(await client.call_tool("add_fact", {"subject": "me"}))
        assert "predicate" in refused and "Field required" in refused
    # A new conversation starts a new process: the memory lives in the database, not in the process.
    async with Client(_server(install), read_timeout_seconds=120) as client:
        found = await client.call_tool("search", {"query": "daughter birthday"})
        assert data(found)["results"][0]["id"] == stored["id"]
        await client.call_tool("delete_memory", {"memory_id": stored["id"]})
        assert data(await client.call_tool("search", {"query": "daughter birthday"}))["results"] == []


def test_a_bad_key_stops_the_server_at_start_with_a_readable_error(install: Install) -> None:
    env = {**install.env, "ENGRAM_API_KEY": "egm_abcdefghijkl_" + "x" * 40}
    done = _engramdb(env, "mcp")
    assert done.returncode == 1
    assert "the API key is not valid" in done.stderr and done.stdout == ""
    missing = _engramdb(install.env, "mcp")
    assert missing.returncode == 2 and "ENGRAM_API_KEY" in missing.stderr
