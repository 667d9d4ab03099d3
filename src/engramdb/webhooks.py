"""Signing and verifying Engram's webhooks, per the Standard Webhooks specification (standardwebhooks.com).

Every delivery carries three headers:

* ``webhook-id``: the event's id, the same on every attempt and replay (deduplicate on it);
* ``webhook-timestamp``: when this attempt was sent, in unix seconds;
* ``webhook-signature``: ``v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, where ``key`` is the
  base64-decoded part of the endpoint's secret after ``whsec_``. While a rotated secret is still honoured,
  the header holds several signatures separated by spaces; one valid signature is enough.

A receiver checks a request with :func:`verify`, on the raw body bytes as received (not re-serialized JSON)::

    from engramdb.webhooks import InvalidSignature, verify

    try:
        event = verify(secret, request.headers, await request.body())
    except InvalidSignature:
        return Response(status_code=400)

This module needs nothing but the standard library, so receivers can also copy it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
DEFAULT_TOLERANCE_S = 300

__all__ = ["InvalidSignature", "generate_secret", "sign", "signed_headers", "verify"]


class InvalidSignature(ValueError):
    """The request is not a genuine, fresh webhook from Engram: reject it (answer 400)."""


def generate_secret() -> str:
    """A new endpoint secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64>`` signature of one request."""
    signed = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secret_list: Iterable[str], msg_id: str, body: bytes | str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed with every secret given (space-separated)."""
    ts = int(time.time()) if timestamp is None else timestamp
    signatures = " ".join(sign(s, msg_id, ts, body) for s in secret_list)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signatures}


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> Any:
    """Check a received webhook and return its parsed JSON payload.

    Raises :class:`InvalidSignature` when a header is missing, the timestamp is further than
    ``tolerance_s`` from now (a replayed or delayed request), or no signature matches ``body``.
    ``headers`` may be any mapping (header names are matched without regard to case)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        raw_ts = lowered["webhook-timestamp"]
        header = lowered["webhook-signature"]
    except KeyError as exc:
        raise InvalidSignature(f"missing header {exc.args[0]}") from None
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a whole number of seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise InvalidSignature("webhook-timestamp is too far from now (a stale or replayed request?)")
    expected = sign(secret, msg_id, timestamp, body).partition(",")[2]
    for candidate in header.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            try:
                return json.loads(_as_bytes(body))
            except ValueError:
                raise InvalidSignature("the signed body is not JSON") from None
    raise InvalidSignature("no signature matches the body")
