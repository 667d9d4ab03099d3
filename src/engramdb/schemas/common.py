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


def _check_json(value: Any, depth: int = 1) -> None:
    if depth > limits.MAX_METADATA_DEPTH:
        raise ValueError(f"metadata is nested deeper than {limits.MAX_METADATA_DEPTH} levels")
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    _check_json(value)
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
    """Text PostgreSQL can store: no NUL characters, and valid Unicode (no lone surrogates)."""
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text is not valid Unicode (it holds a lone surrogate)") from exc
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
