"""The webhook client: endpoint URLs into the server's network are refused in every textual form, and the
pooled client connects only to addresses it has just checked, keeping the original host's TLS name.

The TLS server listens on 127.0.0.1 with a certificate for ``good.test`` signed by a test CA (``tls/``,
made with ``openssl`` for 100 years); names are resolved by a stand-in for the event loop's resolver, so
nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from engramdb.config import Settings
from engramdb.services.webhooks import destinations
from engramdb.services.webhooks.sender import Sender

TLS = Path(__file__).parent / "tls"
ALLOW_LOOPBACK = Settings(webhook_allow_networks=["127.0.0.1/32"])


class TLSServer:
    """HTTPS on 127.0.0.1 with keep-alive, serving ``good.test``; counts connections and Host headers."""

    def __init__(self) -> None:
        self.connections = 0
        self.hosts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                self.rfile.read(int(self.headers.get("content-length", "0")))
                server.hosts.append(self.headers["host"])
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(TLS / "good.test.pem", TLS / "good.test.key")
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def tls_server() -> Iterator[TLSServer]:
    server = TLSServer()
    yield server
    server.close()


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names the event loop's resolver answers with the given address (any other name fails)."""
    names: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> Any:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return await real(host, port, flags=socket.AI_NUMERICHOST, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return names


def _trusting_test_ca() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(TLS / "ca.pem"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/h",
        "http://127.1/h",
        "http://0x7f.1/h",
        "http://017700000001/h",
        "http://2130706433/h",
        "http://127.0.0.1./h",
        "http://[::1]/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://[::ffff:7f00:1]/h",
        "http://[64:ff9b::7f00:1]/h",
        "http://localhost/h",
        "http://LOCALHOST./h",
        "http://api.localhost/h",
        "http://0.0.0.0/h",
        "http://10.0.0.8/h",
        "http://172.16.0.1/h",
        "http://192.168.1.1/h",
        "http://100.64.0.1/h",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/h",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fe80::1]/h",
        "http://[fc00::1]/h",
        "http://224.0.0.1/h",
        "http://[ff02::1]/h",
    ],
)
def test_internal_urls_are_refused_in_every_form(url: str) -> None:
    reason = destinations.refusal(destinations.Policy(), url)
    assert reason is not None and "ENGRAM_WEBHOOK_ALLOW_NETWORKS" in reason


def test_allowed_hosts_and_networks() -> None:
    policy = destinations.Policy.of(
        Settings(webhook_allow_hosts="hooks.internal, *.corp.example", webhook_allow_networks="127.0.0.1,10.1.0.0/16")
    )
    for url in (
        "http://127.0.0.1:8080/h",
        "http://127.1/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://10.1.2.3/h",
        "http://hooks.internal./h",
        "https://a.corp.example/h",
        "https://example.com/h",
        "https://93.184.216.34/h",
    ):
        assert destinations.refusal(policy, url) is None, url
    for url in ("http://127.0.0.2/h", "http://10.2.0.1/h", "http://localhost/h"):
        assert destinations.refusal(policy, url) is not None, url
    # A metadata address stays refused inside an allowed range; only naming it exactly allows it.
    wide = destinations.Policy.of(Settings(webhook_allow_networks="0.0.0.0/0,::/0"))
    assert destinations.refusal(wide, "http://10.9.9.9/h") is None
    assert destinations.refusal(wide, "http://169.254.169.254/h") is not None
    exact = destinations.Policy.of(Settings(webhook_allow_networks="169.254.169.254/32"))
    assert destinations.refusal(exact, "http://169.254.169.254/h") is None


async def test_a_name_is_checked_where_it_resolves_each_time_a_connection_opens(
    tls_server: TLSServer, fake_dns: dict[str, str]
) -> None:
    fake_dns["good.test"] = "127.0.0.1"  # a public-looking name that resolves into the server's network
    async with Sender(Settings(), ssl_context=_trusting_test_ca()) as sender:
        with pytest.raises(destinations.DestinationRefused, match="good.test is at 127.0.0.1"):
            await sender.client.post(f"https://good.test:{tls_server.port}/h", content=b"{}")
    assert tls_server.connections == 0


async def test_the_pooled_connection_keeps_the_hosts_tls_name(tls_server: TLSServer, fake_dns: dict[str, str]) -> None:
    fake_dns["good.test"] = fake_dns["evil.test"] = "127.0.0.1"
    async with Sender(ALLOW_LOOPBACK, ssl_context=_trusting_test_ca()) as sender:
        for _ in range(3):
            r = await sender.client.post(f"https://good.test:{tls_server.port}/h", content=b"{}")
            assert r.status_code == 204
        assert tls_server.connections == 1  # kept alive and reused
        assert tls_server.hosts == [f"good.test:{tls_server.port}"] * 3
        # The same address under another name: a new connection, whose certificate does not match.
        with pytest.raises(httpx.ConnectError, match="mismatch"):
            await sender.client.post(f"https://evil.test:{tls_server.port}/h", content=b"{}")
        # An address in the URL is not the certificate's name either.
        with pytest.raises(httpx.ConnectError, match="mismatch"):
            await sender.client.post(f"https://127.0.0.1:{tls_server.port}/h", content=b"{}")
    assert len(tls_server.hosts) == 3


async def test_a_sender_makes_one_tls_context_whatever_the_deliveries(
    tls_server: TLSServer, fake_dns: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns["good.test"] = "127.0.0.1"
    made: list[object] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    async with Sender(ALLOW_LOOPBACK, ssl_context=_trusting_test_ca()) as sender:
        for _ in range(20):
            assert (await sender.client.post(f"https://good.test:{tls_server.port}/h", content=b"{}")).is_success
    assert len(made) == 1  # the test CA's own context, made above; none per request
