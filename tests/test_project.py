"""Project-wide rules: documented settings, the pinned public surface. (The import rules, layers included,
live in tests/test_imports.py.)"""

from __future__ import annotations

from pathlib import Path

import engramdb
from engramdb import limits
from engramdb.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [f"ENGRAM_{name.upper()}" for name in Settings.model_fields if f"ENGRAM_{name.upper()}" not in doc]
    assert not missing, f"document these in docs/configuration.md: {missing}"


def test_every_limit_is_documented() -> None:
    doc = (ROOT / "docs" / "api.md").read_text()
    for name in dir(limits):
        if name.isupper():
            value = getattr(limits, name)
            assert f"{value:,}" in doc or str(value) in doc, f"docs/api.md does not state {name} = {value}"


def test_every_operation_is_documented(app) -> None:  # type: ignore[no-untyped-def]
    doc = (ROOT / "docs" / "api.md").read_text()
    for path, ops in app.openapi()["paths"].items():
        for method in ops:
            assert f"{method.upper()} {path}" in doc, f"docs/api.md does not list {method.upper()} {path}"


def test_public_surface_is_pinned() -> None:
    assert engramdb.__all__ == [
        "APIConnectionError",
        "APIError",
        "APIStatusError",
        "APITimeoutError",
        "AsyncClient",
        "AuthenticationError",
        "BadRequestError",
        "Client",
        "ConflictError",
        "InternalServerError",
        "JobPendingError",
        "NotFoundError",
        "PayloadTooLargeError",
        "PermissionDeniedError",
        "RateLimitError",
        "Settings",
        "UnprocessableEntityError",
        "UnsupportedMediaTypeError",
        "__version__",
    ]


def test_every_error_inherits_from_the_base() -> None:
    import inspect

    from engramdb import errors

    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) >= 9
    for cls in classes:
        assert issubclass(cls, errors.EngramError)
        assert 400 <= cls.status < 600 and cls.slug and cls.title


def test_settings_refuse_unsafe_values() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="PostgreSQL URL"):
        Settings(database_url="sqlite:///x.db")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(database_url="postgresql://engram:change-me@db/engram")
    assert Settings(database_url="  ").database_url is None


def test_coverage_does_not_trace_greenlets() -> None:
    """Coverage's greenlet mode gives every thread greenlet state, and greenlet's clean-up of a dead
    thread's state could spin forever in the garbage collector: it hung the test suite (see pyproject)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "greenlet" not in config["tool"]["coverage"]["run"]["concurrency"]
