"""A cursor Engram did not issue is refused (400), whatever it decodes to."""

from __future__ import annotations

import base64
import json
import random

import pytest

from engramdb.errors import InvalidRequest
from engramdb.storage.pagination import decode_cursor, encode_cursor
from tests.conftest import Org, assert_problem


def _mutations(cursor: str, rng: random.Random) -> list[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    out = [cursor[:-1], cursor[1:], cursor + "A", cursor[:-4], cursor.upper(), cursor[::-1], "", "=", "null"]
    for _ in range(100):
        chars = list(cursor)
        chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        out.append("".join(chars))
    # Well-formed JSON lists of the right size that Engram never issued.
    for forged in (["00000000-0000-0000-0000-000000000000"], [1], [None], ["x"], [[]]):
        out.append(base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("="))
    return [m for m in out if m != cursor]


def test_issued_cursors_round_trip() -> None:
    for values in (["0192f0e4-0000-7000-8000-000000000000"], ["2026-12-03T10:00:00+00:00", 7], [-3, "tag"]):
        assert decode_cursor(encode_cursor(values), size=len(values)) == values


def test_every_malformed_or_forged_cursor_is_refused() -> None:
    good = encode_cursor(["0192f0e4-0000-7000-8000-000000000000"])
    for bad in _mutations(good, random.Random(7)):
        with pytest.raises(InvalidRequest):
            decode_cursor(bad, size=1)


async def test_a_list_route_answers_400_to_a_forged_cursor(org: Org) -> None:
    c = org.client
    for content in ("one", "two", "three"):
        assert (await c.post("/v1/memories", json={"content": content})).status_code == 201
    page = (await c.get("/v1/memories", params={"limit": 1})).json()
    assert page["next_cursor"]
    for bad in _mutations(page["next_cursor"], random.Random(11))[:40]:
        assert_problem(await c.get("/v1/memories", params={"limit": 1, "cursor": bad}), 400)
