"""A scripted OpenAI-compatible chat server on 127.0.0.1, for testing the real httpx client over a socket.

Each POST /v1/chat/completions takes the next scripted :class:`Reply` (or the ``always`` one once the
script is spent) and records the request body, so tests can assert on ``response_format`` and on repair
messages. HTTP/1.0 (one request per connection) keeps shutdown simple: no handler thread waits on an idle
keep-alive connection, and slow replies wake as soon as the server closes.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"{}"
    delay_s: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


def completion(content: str, *, prompt_tokens: int = 10, completion_tokens: int = 5, delay_s: float = 0.0) -> Reply:
    """A 200 chat completion whose message content is ``content``."""
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return Reply(body=json.dumps(body).encode(), delay_s=delay_s)


def good(payload: Mapping[str, Any], **kwargs: Any) -> Reply:
    return completion(json.dumps(payload), **kwargs)


def malformed(text: str = '{"summary": "unterminated', **kwargs: Any) -> Reply:
    return completion(text, **kwargs)


def error(status: int, message: str, *, param: str | None = None, headers: Mapping[str, str] | None = None) -> Reply:
    """An error in OpenAI's envelope."""
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    return Reply(status=status, body=json.dumps(body).encode(), headers=tuple((headers or {}).items()))


def reject_format(kind: str = "json_schema") -> Reply:
    """What OpenAI answers a model that cannot do the requested structured output."""
    return error(400, f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model.")


def slow(seconds: float, then: Reply | None = None) -> Reply:
    """``then`` (a harmless completion by default), sent only after ``seconds``."""
    reply = then or completion("{}")
    return Reply(status=reply.status, body=reply.body, delay_s=seconds, headers=reply.headers)


class _Handler(BaseHTTPRequestHandler):
    timeout = 5  # a stuck client cannot hold a handler thread (and so shutdown) for long

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        fake = cast(_Server, self.server).fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != PATH:
            self._send(Reply(status=404, body=b'{"error": {"message": "not found"}}'))
            return
        reply = fake.take(json.loads(raw), dict(self.headers.items()))
        if reply.delay_s and fake.closing.wait(reply.delay_s):
            return  # the server is closing: nobody is waiting for this reply any more
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up, as the test intended

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads, so none outlives its test
    fake: FakeOpenAI


class FakeOpenAI:
    """The server; ``requests`` / ``headers`` hold every request received, in order."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.closing = threading.Event()
        self._script: deque[Reply] = deque()
        self._always: Reply | None = None
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue ``replies``, answered in order."""
        with self._lock:
            self._script.extend(replies)

    def always(self, reply: Reply) -> None:
        """The answer to every request once the script is spent."""
        self._always = reply

    def take(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            if self._script:
                return self._script.popleft()
        return self._always or error(599, "fake server: no scripted reply left")

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def close(self) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
