"""Shared building blocks of the wire models: strict bases, bounded strings, tags, metadata, pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from engramdb import limits


class StrictModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class PublicModel(BaseModel):
    """A response body."""

    model_config = ConfigDict(from_attributes=True)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if _has_nul(value):
        raise ValueError("metadata may not contain NUL characters")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limits.MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; the limit is {limits.MAX_METADATA_BYTES}")
    return value


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _assume_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_NAME_CHARS),
    AfterValidator(_no_nul),
]
Description = Annotated[str, StringConstraints(max_length=limits.MAX_DESCRIPTION_CHARS), AfterValidator(_no_nul)]
ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_EXTERNAL_ID_CHARS),
    AfterValidator(_no_nul),
]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_TAG_CHARS),
    AfterValidator(_no_nul),
]
Tags = Annotated[list[Tag], Field(max_length=limits.MAX_TAGS), AfterValidator(_dedupe)]
Metadata = Annotated[dict[str, Any], AfterValidator(_check_metadata)]
Timestamp = Annotated[datetime, BeforeValidator(_assume_utc), AfterValidator(_assume_utc)]

T = TypeVar("T")


class Page(PublicModel, Generic[T]):
    """One page of a list. Pass ``next_cursor`` back as ``cursor`` to get the next; null at the end."""

    data: list[T]
    next_cursor: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None
