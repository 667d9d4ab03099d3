"""The dashboard's encrypted session cookie, signed tokens, and its secret file (no server needed)."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from pathlib import Path

from engramdb.config import Settings
from engramdb.web.session import SECRET_FILE, Signer, load_secret

ORG = uuid.uuid4()


def _signer(tmp_path: Path, secret: str | None = None) -> Signer:
    return Signer(Settings(data_dir=tmp_path, web_secret=secret, web_session_hours=1))


def test_a_session_reads_back_only_unaltered_unexpired_and_under_its_secret(tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    value, signed = signer.session("egm_abcdefghijkl_secret", ORG, now=1_000_000)
    assert signer.read_session(value, now=1_000_001) == signed
    assert signer.read_session(value, now=1_000_000 + 3600) is None  # expired
    version, payload = value.split(".")
    assert version == "v2" and "." not in payload
    flipped = payload[:20] + ("A" if payload[20] != "A" else "B") + payload[21:]
    assert signer.read_session(f"{version}.{flipped}", now=1_000_001) is None  # altered
    assert signer.read_session(f"v0.{payload}", now=1_000_001) is None
    assert signer.read_session("v2.", now=1_000_001) is None
    assert signer.read_session("v2.AAAA", now=1_000_001) is None  # too short to hold anything
    other = _signer(tmp_path, secret="s" * 40)  # another server's secret
    assert other.read_session(value, now=1_000_001) is None


def test_the_cookie_does_not_reveal_the_key_and_an_old_signed_cookie_is_refused(tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    key = "egm_abcdefghijkl_thesecretpart"
    value, _ = signer.session(key, ORG)
    sealed = base64.urlsafe_b64decode(value.split(".")[1] + "==")
    assert b"thesecretpart" not in sealed and str(ORG).encode() not in sealed
    assert value != signer.session(key, ORG)[0]  # a fresh nonce each time
    legacy = base64.urlsafe_b64encode(json.dumps({"k": key, "o": str(ORG), "e": 2**40, "n": "x"}).encode()).decode()
    assert signer.read_session(f"v1.{legacy}.{signer._mac('session', legacy)}") is None  # signed only: refused


def test_a_csrf_token_belongs_to_one_sign_in(tmp_path: Path) -> None:
    signer = _signer(tmp_path)
    _, first = signer.session("egm_abcdefghijkl_secret", ORG)
    _, second = signer.session("egm_abcdefghijkl_secret", ORG)
    assert signer.check_csrf(first, signer.csrf(first))
    assert not signer.check_csrf(second, signer.csrf(first))
    assert not signer.check_csrf(first, None) and not signer.check_csrf(first, "")
    cookie, token = signer.sign_in_token()
    assert signer.check_sign_in(cookie, token)
    other_cookie, _ = signer.sign_in_token()
    assert not signer.check_sign_in(other_cookie, token)
    assert signer.read_flash(signer.flash("the API key was revoked")) == "the API key was revoked"
    assert signer.read_flash("dGhl.forged") is None


def test_the_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    first = load_secret(tmp_path / "data")
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(tmp_path / "data") == first and len(first) >= 32
    assert [p.name for p in path.parent.iterdir()] == [SECRET_FILE]  # nothing left aside
    signer = _signer(tmp_path / "data")
    value, signed = signer.session("egm_abcdefghijkl_secret", ORG)
    assert _signer(tmp_path / "data").read_session(value) == signed  # a restart keeps sign-ins
