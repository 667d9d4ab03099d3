"""Decay: a memory's effective importance fades with the time since it was last used.

``effective = importance × 2^(−idle / half-life)``, where *idle* is the time since the memory was last
read by a search or context (``last_accessed_at``), or confirmed (extraction met it again, or it was
edited: ``updated_at``), whichever is later, and the half-life is its type's
(``ENGRAM_DECAY_HALF_LIFE_DAYS``). A type whose half-life is 0 does not decay: by default facts and
procedures, which stay true until something replaces them (a fact that no longer holds is closed, not
faded). Search uses the effective importance where ``weights.importance`` counts; ``explain`` shows both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

DAY_S = 86_400.0


def last_used(row: Mapping[str, Any]) -> datetime | None:
    """When the memory was last read or confirmed (else created)."""
    times = [row.get(k) for k in ("last_accessed_at", "updated_at", "created_at")]
    known = [when for when in times if when is not None]
    return max(known) if known else None


def factor(row: Mapping[str, Any], now: datetime, half_lives: Mapping[str, float]) -> float:
    """``2^(−idle / half-life)`` for a memory row (``memory_type`` and the times above); 1.0 when its
    type does not decay or its times are unknown."""
    half_life = half_lives.get(str(row.get("memory_type")), 0.0)
    when = last_used(row)
    if half_life <= 0 or when is None:
        return 1.0
    idle_days = max(0.0, (now - when).total_seconds() / DAY_S)
    return math.exp(-math.log(2) * idle_days / half_life)


def effective(row: Mapping[str, Any], now: datetime, half_lives: Mapping[str, float]) -> float:
    return float(row["importance"]) * factor(row, now, half_lives)
