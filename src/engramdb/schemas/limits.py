"""Rate limits as an organization's admin sees and sets them (``GET``/``PUT /v1/limits``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engramdb.schemas.common import PublicModel, StrictModel

RouteClass = Literal["reads", "writes", "searches", "extraction", "exports"]
ROUTE_CLASSES: tuple[RouteClass, ...] = ("reads", "writes", "searches", "extraction", "exports")
MAX_LIMIT = 10_000_000  # requests per window: any higher is no limit at all (0 says so)


class LimitValues(StrictModel):
    """An organization's own limits of one route class, in requests per window."""

    per_key: int | None = Field(
        default=None,
        ge=0,
        le=MAX_LIMIT,
        strict=True,
        description="For each API key. Null: the server's default; 0: no limit.",
    )
    per_org: int | None = Field(
        default=None,
        ge=0,
        le=MAX_LIMIT,
        strict=True,
        description="For the organization, all its keys together. Null: the server's default; 0: no limit.",
    )


class LimitsUpdate(StrictModel):
    """``PUT /v1/limits``: the organization's limits, whole. A class left out (or null) has the server's
    defaults again."""

    reads: LimitValues | None = None
    writes: LimitValues | None = None
    searches: LimitValues | None = None
    extraction: LimitValues | None = None
    exports: LimitValues | None = None


class ClassLimits(PublicModel):
    route_class: RouteClass = Field(
        description="`reads` (GET), `writes` (other writes), `searches` (search, context), `extraction` (writes "
        "that queue extraction or a narrative), `exports` (export and import)."
    )
    per_key: int = Field(description="The limit in force for each API key (0: none).")
    per_org: int = Field(description="The limit in force for the organization (0: none).")
    default_per_key: int = Field(description="The server's default (`ENGRAM_RATE_LIMIT_<CLASS>`).")
    default_per_org: int = Field(description="The server's default (`ENGRAM_ORG_RATE_LIMIT_<CLASS>`).")
    override_per_key: int | None = Field(description="The organization's own value, if it set one.")
    override_per_org: int | None = Field(description="The organization's own value, if it set one.")


class Limits(PublicModel):
    window_s: int = Field(description="Limits are requests per this many seconds, paced evenly over it.")
    burst: float = Field(description="Share of each limit a client that has been quiet may send at once.")
    data: list[ClassLimits]
