"""The dashboard's sign-in: an API key exchanged for an encrypted session cookie, and the CSRF tokens of its forms.

The cookie holds the key itself, the organization it belongs to, an expiry and a random nonce, encrypted
and authenticated with AES-256-GCM under a key derived from the server's web secret (``ENGRAM_WEB_SECRET``,
else a random one kept in the data directory): whoever sees the cookie learns nothing of the key, and a
changed cookie is refused. Keeping the key lets every page authenticate it again through
``keys.authenticate``, exactly as the API does, so a revoked or expired key signs the browser out on its
next page and nothing is stored on the server (any number of server processes share one secret, not a
session table). The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
sends it), ``Path=/ui`` (the API never sees it, and it is no API credential) and ``Secure`` over HTTPS; a
copied cookie still signs its holder in to the dashboard until it expires or its key is revoked: see
docs/decisions/0012-web-dashboard.md for that trade-off.

A form's CSRF token is an HMAC of the session's nonce (so it changes with every sign-in and is useless
with another cookie); the sign-in form, which has no session yet, pairs its token with a short-lived
pre-session cookie (double submit).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engramdb.config import Settings
from engramdb.errors import ConfigurationError

SESSION_COOKIE = "engram_session"
SIGN_IN_COOKIE = "engram_sign_in"
FLASH_COOKIE = "engram_flash"  # why the last page signed the browser out, for the sign-in form to say
FLASH_TTL_S = 60
COOKIE_PATH = "/ui"
SIGN_IN_TTL_S = 3600  # how long a sign-in form may stay open before it must be reloaded
SECRET_FILE = "web-secret"
_VERSION = "v2"  # v1 (signed, not encrypted) cookies are refused: their browsers sign in again
_AAD = b"engram-session-v2"
_log = logging.getLogger("engramdb.web")


@dataclass(frozen=True)
class SignedIn:
    """What a valid session cookie says: the key to authenticate, its organization, when it ends."""

    key: str
    org_id: uuid.UUID
    expires_at: int  # Unix time
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks the dashboard's cookies and tokens. The secret is read (or made) on first use, so
    an app that never serves the dashboard (a test of the API) touches no file."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._secret: bytes | None = None
        self.lifetime_s = settings.web_session_hours * 3600

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            given = self._settings.web_secret
            self._secret = given.encode() if given else load_secret(self._settings.data_dir)
        return self._secret

    @property
    def _cipher(self) -> AESGCM:
        """AES-256-GCM under a key of its own, derived from the secret (never the secret itself)."""
        return AESGCM(hmac.new(self.secret, b"engram-session-encryption", hashlib.sha256).digest())

    def _mac(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self.secret, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest())

    def session(self, key: str, org_id: uuid.UUID, *, now: float | None = None) -> tuple[str, SignedIn]:
        """A new session cookie's value for ``key`` (already authenticated), and what it says."""
        signed = SignedIn(
            key=key,
            org_id=org_id,
            expires_at=int((now or time.time()) + self.lifetime_s),
            nonce=secrets.token_urlsafe(16),
        )
        plain = json.dumps(
            {"k": signed.key, "o": str(signed.org_id), "e": signed.expires_at, "n": signed.nonce},
            separators=(",", ":"),
        ).encode()
        iv = secrets.token_bytes(12)
        return f"{_VERSION}.{_b64(iv + self._cipher.encrypt(iv, plain, _AAD))}", signed

    def read_session(self, value: str | None, *, now: float | None = None) -> SignedIn | None:
        """What the cookie says, or None when it is missing, altered, signed with another secret or expired."""
        if not value:
            return None
        version, _, payload = value.partition(".")
        if version != _VERSION or not payload:
            return None
        try:
            sealed = _unb64(payload)
            data = json.loads(self._cipher.decrypt(sealed[:12], sealed[12:], _AAD))
            signed = SignedIn(
                key=str(data["k"]), org_id=uuid.UUID(data["o"]), expires_at=int(data["e"]), nonce=data["n"]
            )
        except (InvalidTag, ValueError, KeyError, TypeError, binascii.Error):
            return None
        if signed.expires_at <= (now or time.time()):
            return None
        return signed

    def csrf(self, signed: SignedIn) -> str:
        """The CSRF token of every form shown under this session."""
        return self._mac("csrf", signed.nonce)

    def check_csrf(self, signed: SignedIn, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(signed))

    def sign_in_token(self) -> tuple[str, str]:
        """(cookie value, form token) for a sign-in form: the form's token must match its cookie's."""
        nonce = secrets.token_urlsafe(16)
        stamp = str(int(time.time()))
        value = f"{nonce}.{stamp}"
        return f"{value}.{self._mac('sign-in', value)}", self._mac("sign-in-form", nonce)

    def check_sign_in(self, cookie: str | None, token: str | None) -> bool:
        nonce, _, rest = (cookie or "").partition(".")
        stamp, _, mac = rest.partition(".")
        if not nonce or not stamp.isdigit() or not token:
            return False
        if not hmac.compare_digest(mac, self._mac("sign-in", f"{nonce}.{stamp}")):
            return False
        if int(stamp) + SIGN_IN_TTL_S < time.time():
            return False
        return hmac.compare_digest(str(token), self._mac("sign-in-form", nonce))

    def flash(self, text: str) -> str:
        payload = _b64(text[:500].encode())
        return f"{payload}.{self._mac('flash', payload)}"

    def read_flash(self, value: str | None) -> str | None:
        payload, _, mac = (value or "").partition(".")
        if not payload or not hmac.compare_digest(mac, self._mac("flash", payload)):
            return None
        try:
            return _unb64(payload).decode()
        except (ValueError, binascii.Error):
            return None


def load_secret(data_dir: Path) -> bytes:
    """The secret kept in ``data_dir``, made on first use. Several server processes may start at once: the
    file appears whole or not at all (written aside, then linked into place), and the first link wins."""
    path = data_dir / SECRET_FILE
    try:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            aside = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
            try:
                os.link(aside, path)
            except FileExistsError:
                pass  # another process won: use its secret
            finally:
                aside.unlink()
        text = path.read_text().strip()
    except OSError as exc:
        _log.warning(
            "cannot keep the dashboard's secret in %s (%s): sign-ins last until this process stops; "
            "set ENGRAM_WEB_SECRET",
            path,
            exc,
        )
        return secrets.token_urlsafe(48).encode()
    if len(text) < 32:
        raise ConfigurationError(
            f"{path} holds a web secret of under 32 characters: delete it or set ENGRAM_WEB_SECRET"
        )
    return text.encode()
