"""Shared building blocks of the wire models: strict bases, bounded strings, tags, metadata, pages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema

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


_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?")


def _iso_8601(value: Any) -> Any:
    """A timestamp is ISO 8601 text (or a ``datetime``, from Python): pydantic would also read a number, or
    text of digits, as Unix time, so ``1700000000`` or ``"0"`` would silently become a date."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_8601.fullmatch(value):
        return value
    raise ValueError("a timestamp is an ISO 8601 string such as 2026-01-31T09:30:00Z (not a number)")


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
# Text's check, for a type that constrains ``str`` first: ``Annotated[Text, StringConstraints(...)]`` would check
# the lengths before stripping, so "   " passed min_length=1 and arrived empty (a 500 on a fact's subject).
NoNul = AfterValidator(_no_nul)
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_NAME_CHARS),
    AfterValidator(_no_nul),
]
Description = Annotated[str, StringConstraints(max_length=limits.MAX_DESCRIPTION_CHARS), AfterValidator(_no_nul)]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _exact_id(value: str) -> str:
    """An external id is your application's key, compared exactly: ``"alice"`` and ``"alice "`` would be
    two users that look like one, so an id that begins or ends with white space, or holds a control
    character (a tab, a newline), is refused rather than trimmed."""
    if value != value.strip():
        raise ValueError("an external id may not begin or end with white space; send it trimmed")
    if _CONTROL.search(value):
        raise ValueError("an external id may not contain control characters (tabs, newlines)")
    return value


ExternalId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=limits.MAX_EXTERNAL_ID_CHARS),
    AfterValidator(_no_nul),
    AfterValidator(_exact_id),
]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_TAG_CHARS),
    AfterValidator(_no_nul),
]
Tags = Annotated[list[Tag], Field(max_length=limits.MAX_TAGS), AfterValidator(_dedupe)]
Metadata = Annotated[dict[str, Any], AfterValidator(_check_metadata)]
Timestamp = Annotated[datetime, BeforeValidator(_iso_8601), AfterValidator(_assume_utc)]


def _json_object(value: Any) -> Any:
    """A query parameter's JSON text as the object it spells; an object (a caller of the SDK) as it is."""
    if not isinstance(value, str):
        return value
    if len(value) > limits.MAX_JSON_QUERY_CHARS:
        raise ValueError(f"at most {limits.MAX_JSON_QUERY_CHARS} characters of JSON")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError("not a JSON object")
    return parsed


def _json_text(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# A filter on metadata: a JSON object on the wire (as text in the query string, so that is what the OpenAPI
# document describes and what ``model_dump(mode="json")`` gives the SDK to send), a dict in the service.
JsonObjectQuery = Annotated[
    Metadata,
    BeforeValidator(_json_object),
    PlainSerializer(_json_text, when_used="json"),
    WithJsonSchema({"type": "string", "maxLength": limits.MAX_JSON_QUERY_CHARS}),
]
MetadataFilter = Annotated[
    JsonObjectQuery | None, Field(description='JSON object the metadata must contain, e.g. {"topic":"billing"}')
]
TagsFilter = Annotated[list[Tag] | None, Field(description="Repeat the parameter for several tags.")]

T = TypeVar("T")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# A field a PATCH may leave out but not clear (a name, a count): null is refused ("may not be null: leave a
# field out to keep it"), so the OpenAPI document offers neither null nor a null default.
NotClearable = Annotated[T | SkipJsonSchema[None], Field(json_schema_extra=_no_default)]


class Page(PublicModel, Generic[T]):
    """One page of a list. Pass ``next_cursor`` back as ``cursor`` to get the next; null at the end."""

    data: list[T]
    next_cursor: str | None = None


class PageQuery(StrictModel):
    """The paging half of every list's filters (``XFilters`` extend it): the query string of a list, as
    routes take it (``Annotated[XFilters, Query()]``), services read it and the SDK sends it. Unknown
    parameters are refused, like unknown body fields."""

    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor` of the previous page.")
    limit: int = Field(default=limits.DEFAULT_PAGE_SIZE, ge=1, le=limits.MAX_PAGE_SIZE, description="Page size.")


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None
