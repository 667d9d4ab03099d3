"""Through a real socket: `engramdb serve` on its embedded defaults, the CLI sharing its database from
another process, the README's curl flow, and a bounded schemathesis run over the OpenAPI document."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import stop_postgres

pytestmark = pytest.mark.slow
# Bounded for CI; raise it by hand for a longer hunt (SCHEMATHESIS_EXAMPLES=200).
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))


@dataclass(frozen=True)
class Server:
    base: str
    env: dict[str, str]
    key: str
    startup_s: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "engramdb", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("served")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env.update({"ENGRAM_DATA_DIR": str(data_dir), "ENGRAM_PORT": str(port), "ENGRAM_LOG_LEVEL": "warning"})
    started = time.monotonic()
    log_path = data_dir / "serve.log"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "engramdb", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise AssertionError(f"engramdb serve exited: {log_path.read_text()}")
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("engramdb serve did not become healthy in 60 s")
        startup = time.monotonic() - started
        created = json.loads(_cli(env, "init", "--org", "acme", "--json"))
        yield Server(base=base, env=env, key=created["api_key"], startup_s=startup)
    finally:
        proc.terminate()
        try:
            stopped = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stopped = None
        log.close()
        stop_postgres(data_dir / "pgdata")
    # A clean shutdown: background loops (access tracking, embedding backfill) end on cancellation.
    # (uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is the clean exit status)
    assert stopped in (0, -signal.SIGTERM), f"engramdb serve did not stop on SIGTERM: {log_path.read_text()[-2000:]}"


def test_readme_flow_over_http(server: Server) -> None:
    h = {"Authorization": f"Bearer {server.key}"}
    with httpx.Client(base_url=server.base, headers=h, timeout=10) as c:
        s = c.post("/v1/sessions", json={"external_user_id": "alice"}).json()
        msgs = c.post(
            f"/v1/sessions/{s['id']}/messages",
            json={
                "messages": [
                    {"role": "user", "content": "I moved to Lisbon last month"},
                    {"role": "assistant", "content": "How do you like it?"},
                    {"role": "user", "content": "Love it, but I miss Porto"},
                ]
            },
        )
        assert msgs.status_code == 201
        listed = c.get(f"/v1/sessions/{s['id']}/messages").json()["data"]
        assert len(listed) == 3
        m = c.post("/v1/memories", json={"external_user_id": "alice", "content": "Lives in Lisbon"}).json()
        assert c.get(f"/v1/memories/{m['id']}").json()["content"] == "Lives in Lisbon"
        c.patch(f"/v1/memories/{m['id']}", json={"content": "Lives in Lisbon since 2024"})
        history = c.get(f"/v1/memories/{m['id']}/history").json()["data"]
        assert history[-1]["old_values"] == {"content": "Lives in Lisbon"}
        actions = {e["action"] for e in c.get("/v1/audit").json()["data"]}
        assert {"session.created", "messages.added", "memory.created", "memory.updated"} <= actions
        other = json.loads(_cli(server.env, "init", "--org", "globex", "--json"))["api_key"]
        for url in (f"/v1/sessions/{s['id']}", f"/v1/memories/{m['id']}", f"/v1/messages/{listed[0]['id']}"):
            r = c.get(url, headers={"Authorization": f"Bearer {other}"})
            assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert server.startup_s < 60


def _streams(operation: dict) -> bool:  # type: ignore[type-arg]
    """Whether the operation answers with Server-Sent Events (as its OpenAPI responses say)."""
    return any("text/event-stream" in (r.get("content") or {}) for r in operation.get("responses", {}).values())


def test_schemathesis_finds_no_server_errors(server: Server) -> None:
    """Bounded property-based run over every operation of the served OpenAPI document."""
    api = schemathesis.openapi.from_url(f"{server.base}/openapi.json")
    headers = {"Authorization": f"Bearer {server.key}"}
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        if _streams(operation.definition.raw):
            continue  # an event stream never ends: each call would wait out schemathesis's read timeout
        operations += 1

        # Derandomized, as the in-process run is: the same examples on every machine.
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
            if response.status_code >= 400:
                content_type = response.headers["content-type"]
                content_type = content_type[0] if isinstance(content_type, list) else content_type
                assert content_type.startswith("application/problem+json"), response.text

        check()
    assert operations >= 35


SDK_SCRIPT = """
import sys
from engramdb import Client

with Client() as client:  # ENGRAM_URL and ENGRAM_API_KEY come from the environment
    session = client.sessions.create(external_user_id="dana")
    client.sessions.messages.add(session.id, [
        {"role": "user", "content": "I adopted a cat named Miso", "occurred_at": "2026-02-01T10:00:00Z"},
        {"role": "assistant", "content": "Congratulations!"},
    ])
    print(client.context(session_id=session.id, query="What pet does Dana have?", token_budget=300).context)
"""


def test_a_ten_line_sdk_script_imports_a_conversation_and_asks_for_context(server: Server, tmp_path: Path) -> None:
    script = tmp_path / "remember.py"
    script.write_text(SDK_SCRIPT)
    assert len(SDK_SCRIPT.strip().splitlines()) <= 10
    env = {**server.env, "ENGRAM_URL": server.base, "ENGRAM_API_KEY": server.key}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "<engram-context" in done.stdout and "Miso" in done.stdout


def test_the_cli_drives_a_remote_server(server: Server, tmp_path: Path) -> None:
    chat = tmp_path / "chat.jsonl"
    chat.write_text(
        "\n".join(
            json.dumps({"role": role, "content": text, "timestamp": f"2026-03-0{i + 1}T08:00:00Z"})
            for i, (role, text) in enumerate([("user", "My favourite tea is genmaicha"), ("assistant", "Nice")])
        )
    )
    remote = ("--url", server.base, "--api-key", server.key)
    env = {k: v for k, v in server.env.items() if k != "ENGRAM_DATA_DIR"}  # nothing local to fall back on
    env["ENGRAM_DATA_DIR"] = str(tmp_path / "unused")
    assert "imported 2 messages" in _cli(env, "chat-import", str(chat), "--user", "erin", *remote)
    found = json.loads(_cli(env, "search", "favourite tea", "--user", "erin", "--json", *remote))["results"]
    assert found and "genmaicha" in found[0]["content"]
    assert not (tmp_path / "unused").exists()  # no embedded database was started for a remote call


async def test_an_mcp_client_stores_and_recalls_over_the_served_endpoint(server: Server) -> None:
    """The MCP SDK's own client against `engramdb serve` at /mcp, through a real socket."""
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {server.key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(f"{server.base}/mcp", http_client=http)) as client,
    ):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"add_memory", "search", "get_context"} <= tools
        stored = await client.call_tool(
            "add_memory", {"content": "Hana prefers oolong tea", "external_user_id": "hana"}
        )
        assert not stored.is_error
        found = await client.call_tool("search", {"query": "what tea does Hana like", "external_user_id": "hana"})
        assert not found.is_error and "oolong" in str(found.structured_content)
    refused = httpx.post(f"{server.base}/mcp", json={}, headers={"Authorization": "Bearer egm_wrong"}, timeout=10)
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")
