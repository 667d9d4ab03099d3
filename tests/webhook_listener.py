"""A real webhook receiver on 127.0.0.1 for tests: records every request; answers scripted statuses, after a
delay if asked, and counts the requests it holds at once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Listener:
    """``url(path)`` names a path of the listener; each path answers its scripted statuses in turn
    (``script``), then 200; a path given a ``delay`` takes that long to answer; ``peak`` is the most
    requests a path has held at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[str, list[Received]] = defaultdict(list)
        self._scripts: dict[str, deque[int]] = defaultdict(deque)
        self._delays: dict[str, float] = {}
        self._open: dict[str, int] = defaultdict(int)
        self._peaks: dict[str, int] = defaultdict(int)
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with listener._lock:
                    listener._requests[self.path].append(received)
                    script = listener._scripts[self.path]
                    status = script.popleft() if script else 200
                    listener._open[self.path] += 1
                    listener._peaks[self.path] = max(listener._peaks[self.path], listener._open[self.path])
                    delay = listener._delays.get(self.path, 0.0)
                time.sleep(delay)
                with listener._lock:
                    listener._open[self.path] -= 1
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answered {status}".encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-listener", daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def script(self, path: str, *statuses: int) -> None:
        with self._lock:
            self._scripts[path].extend(statuses)

    def delay(self, path: str, seconds: float) -> None:
        with self._lock:
            self._delays[path] = seconds

    def peak(self, path: str) -> int:
        with self._lock:
            return self._peaks[path]

    def received(self, path: str) -> list[Received]:
        with self._lock:
            return list(self._requests[path])

    async def wait_for(self, path: str, count: int, *, timeout_s: float = 30.0) -> list[Received]:
        """The requests to ``path`` once there are ``count`` of them (polled, up to a deadline)."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.received(path)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(got)} of {count} requests after {timeout_s} s")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
