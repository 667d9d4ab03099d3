"""Export and import: the header line of an export file and the report of an import.

An export is JSON Lines (``application/x-ndjson``): the header below, then one ``{"kind", "data"}``
record per stored row, in dependency order, then the end record (docs/api.md, "Export and import").
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from engramdb.schemas.common import PublicModel

EXPORT_KIND = "engram.export"
EXPORT_VERSION = 1
END_KIND = "end"


class ExportScope(BaseModel):
    """What an export holds: the whole organization, or one user's data."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["org", "user"]
    user_id: uuid.UUID | None = None
    external_id: str | None = None


class ExportHeader(BaseModel):
    """The first line of an export file. On import only ``kind`` and ``version`` are binding: the
    organization comes from the API key (``org_id`` is informative), and whether a row's vector is kept
    depends on the row's own ``embedding_model``."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["engram.export"]
    version: Literal[1]
    org_id: uuid.UUID | None = None
    scope: ExportScope | None = None
    exported_at: datetime | None = None
    embedding_model: str | None = None
    dimensions: int | None = None
    include_embeddings: bool = True


class ExportEnd(BaseModel):
    """The last line of an export file, ``{"kind": "end", "records": N}``: written once every record is,
    with ``N`` the number of records between the header and it. A file without it was cut short (a
    broken stream or download); an import refuses it, and one whose count does not match."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["end"]
    records: StrictInt = Field(ge=0)


class ImportedVectors(PublicModel):
    kept: int = Field(0, description="Rows stored with the vector from the file.")
    reembedded: int = Field(
        0,
        description="Rows whose vector was missing, or made by another model: entities and facts were embedded "
        "during the import; messages, memories and chunks are embedded by the background backfill.",
    )


class ImportResult(PublicModel):
    """What one import stored. Counts are keyed by record kind, in the plural (``memories``, ``facts``)."""

    imported: dict[str, int] = Field(description="New rows, per kind.")
    skipped: dict[str, int] = Field(description="Rows whose id was already in the organization (left as they were).")
    lines: int = Field(description="Lines read, the header and the end record included.")
    vectors: ImportedVectors
    cleared_references: int = Field(
        0,
        description="References to users that are neither in the file nor in the organization (another "
        "speaker in a user's session, another user's agent), stored as null.",
    )
