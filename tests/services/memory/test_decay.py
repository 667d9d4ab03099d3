"""Decay: importance halves every half-life of idle time, counted from the last read or confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from engramdb.config import Settings
from engramdb.services.memory import decay

NOW = datetime(2026, 12, 1, tzinfo=UTC)
HALF = {"episodic": 10.0, "fact": 0.0}


def row(kind: str, **ago_days: float) -> dict[str, object]:
    times = {k: NOW - timedelta(days=v) for k, v in ago_days.items()}
    return {"memory_type": kind, "importance": 0.8, **times}


def test_idle_time_runs_from_the_latest_read_or_confirmation() -> None:
    old = row("episodic", created_at=40, updated_at=30, last_accessed_at=20)
    assert decay.last_used(old) == NOW - timedelta(days=20)
    assert decay.factor(old, NOW, HALF) == pytest.approx(0.25)  # two half-lives
    assert decay.effective(old, NOW, HALF) == pytest.approx(0.2)
    read_today = row("episodic", created_at=40, updated_at=30, last_accessed_at=0)
    assert decay.factor(read_today, NOW, HALF) == pytest.approx(1.0)


def test_types_without_a_half_life_do_not_fade() -> None:
    assert decay.factor(row("fact", created_at=400), NOW, HALF) == 1.0
    assert decay.factor(row("task", created_at=400), NOW, HALF) == 1.0  # not in the map: no decay
    assert decay.factor({"memory_type": "episodic", "importance": 0.5}, NOW, HALF) == 1.0  # no times known


def test_half_lives_are_checked_when_configured() -> None:
    assert Settings(decay_half_life_days={"episodic": 7}).decay_half_life_days == {"episodic": 7.0}
    with pytest.raises(ValidationError, match="unknown memory types"):
        Settings(decay_half_life_days={"episodes": 7})
    with pytest.raises(ValidationError, match="half-life"):
        Settings(decay_half_life_days={"episodic": -1})
