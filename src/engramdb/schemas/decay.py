"""Decay half-lives as an organization sees and sets them (``GET``/``PUT /v1/decay``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from engramdb.schemas.common import PublicModel, StrictModel
from engramdb.schemas.memories import MemoryType

MAX_HALF_LIFE_DAYS = 36_500.0

HalfLife = Annotated[float, Field(ge=0.0, le=MAX_HALF_LIFE_DAYS, allow_inf_nan=False, strict=True)]


class DecayUpdate(StrictModel):
    """``PUT /v1/decay``: the organization's own half-lives, whole. A type left out has the server's again."""

    half_life_days: dict[MemoryType, HalfLife] = Field(
        description="Days for a memory of the type to lose half its importance since it was last read or "
        "confirmed; 0: the type does not decay in this organization. Types left out: the server's default."
    )


class TypeDecay(PublicModel):
    memory_type: MemoryType
    half_life_days: float = Field(description="The half-life in force (0: no decay).")
    default_half_life_days: float = Field(description="The server's (`ENGRAM_DECAY_HALF_LIFE_DAYS`).")
    override_half_life_days: float | None = Field(description="The organization's own value, if it set one.")


class Decay(PublicModel):
    data: list[TypeDecay]
