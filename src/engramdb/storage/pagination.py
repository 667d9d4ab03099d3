"""Opaque cursors: base64url of a JSON list holding the sort key of the last row returned."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from engramdb.errors import InvalidRequest

BAD_CURSOR = "the cursor is not valid: pass back a next_cursor from an earlier page"


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(BAD_CURSOR) from exc
    if not isinstance(values, list) or len(values) != size:
        raise InvalidRequest(BAD_CURSOR)
    return values
