"""The dashboard's signed cookies and tokens, and its secret file (no server needed)."""

from __future__ import annotations

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
    version, payload, mac = value.split(".")
    assert signer.read_session(f"{version}.{payload[:-1]}A.{mac}", now=1_000_001) is None  # altered
    assert signer.read_session(f"v0.{payload}.{mac}", now=1_000_001) is None
    assert signer.read_session("v1..", now=1_000_001) is None
    other = _signer(tmp_path, secret="s" * 40)  # another server's secret
    assert other.read_session(value, now=1_000_001) is None


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
