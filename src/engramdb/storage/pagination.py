"""Opaque cursors: base64url of a check tag and a JSON list holding the sort key of the last row returned.

The tag (the first bytes of a SHA-256 of the list) makes a cursor Engram did not issue (truncated, edited,
made up) a 400, never a page of the wrong rows or an empty 200. It is not a secret: a cursor only says
where a caller's own list stopped, and every page is still confined by the caller's visibility."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from engramdb.errors import InvalidRequest

BAD_CURSOR = "the cursor is not valid: pass back a next_cursor from an earlier page"


_TAG = 6  # bytes of the check tag


def _tag(raw: bytes) -> bytes:
    return hashlib.sha256(b"engram-cursor\0" + raw).digest()[:_TAG]


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(_tag(raw) + raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = base64.urlsafe_b64decode(padded.encode())
        tag, raw = data[:_TAG], data[_TAG:]
        if not hmac.compare_digest(tag, _tag(raw)):
            raise InvalidRequest(BAD_CURSOR)
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(BAD_CURSOR) from exc
    if not isinstance(values, list) or len(values) != size:
        raise InvalidRequest(BAD_CURSOR)
    return values
