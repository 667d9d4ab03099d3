"""Query-string parameters shared by list routes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Query

from engramdb.errors import ValidationFailed

TagsQ = Annotated[list[str] | None, Query(description="Repeat the parameter for several tags.")]
MetadataQ = Annotated[
    str | None,
    Query(description='JSON object the metadata must contain, e.g. {"topic":"billing"}', max_length=4096),
]


def json_object(value: str | None, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValidationFailed(
            f"{name} must be a JSON object", errors=[{"location": f"query/{name}", "message": "not a JSON object"}]
        )
    return parsed
