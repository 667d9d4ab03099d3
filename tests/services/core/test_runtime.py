"""Runtime helpers: the memory of large search scopes."""

from __future__ import annotations

from engramdb.services.core.runtime import LargeScopes


def test_large_scopes_expire_and_stay_bounded() -> None:
    scopes = LargeScopes(ttl_s=60, size=2)
    scopes.add("a")
    scopes.add("b")
    assert "a" in scopes and "b" in scopes and "c" not in scopes
    scopes.add("c")  # over the bound: the oldest goes
    assert "a" not in scopes and "b" in scopes and "c" in scopes
    expired = LargeScopes(ttl_s=0)
    expired.add("a")
    assert "a" not in expired
