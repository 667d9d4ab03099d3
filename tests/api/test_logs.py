"""Secrets sent where they should not be (a key in the query string) never reach a log line."""

from __future__ import annotations

import io
import logging

import pytest

from engramdb.api import logs

KEY = "egm_abcdefghijkl_" + "s" * 40


@pytest.mark.parametrize(
    "line",
    [
        f"/v1/memories?api_key={KEY}",
        f"/v1/memories?limit=5&api_key={KEY}&x=1",
        "/v1/search?token=opaque-token-value",
        f"Authorization: Bearer {KEY}",
        "Authorization: Bearer some.jwt.value",
        f"refused key {KEY}",
        "secret=whsec_c2VjcmV0IHZhbHVl",
    ],
)
def test_redact_hides_every_secret(line: str) -> None:
    out = logs.redact(line)
    assert logs.REDACTED in out
    for secret in (KEY, "opaque-token-value", "some.jwt.value", "whsec_c2VjcmV0IHZhbHVl"):
        assert secret not in out


def test_redact_keeps_ordinary_text() -> None:
    line = '127.0.0.1:5000 - "GET /v1/memories?limit=5&tags_any=keys HTTP/1.1" 200'
    assert logs.redact(line) == line


def test_the_access_log_never_prints_a_key_sent_in_the_query_string() -> None:
    """As uvicorn writes its access line: the path with its query is an argument of the record."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        logs.install()
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/v1/memories?api_key={KEY}", "1.1", 401)
        child = logging.getLogger("engramdb.api.somewhere")
        root_handler = logging.StreamHandler(stream)
        logging.getLogger().addHandler(root_handler)
        logs.install()
        child.warning("refused the key %s", KEY)
        logging.getLogger().removeHandler(root_handler)
    finally:
        access.removeHandler(handler)
    written = stream.getvalue()
    assert "GET /v1/memories?api_key=[redacted]" in written
    assert KEY not in written
    assert "refused the key [redacted]" in written
