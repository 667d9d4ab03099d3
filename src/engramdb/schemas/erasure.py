"""Erasure with a receipt: what ``POST /v1/<subjects>/{id}/erase`` answers, and how a receipt is checked.

A receipt names the erased subject only by the erasure's pseudonym (a random UUID drawn for it, which the
audit log also names), says when, and counts the rows removed from each table. Its ``receipt_sha256`` is
the SHA-256 of :func:`canonical` (the organization's id, the pseudonym, the time and the counts), so
whoever keeps the receipt and the operator, who holds the matching audit row (``user.erased`` …, whose
``details`` hold the counts and the hash and whose ``created_at`` is the erasure's time), can show that
they describe the same erasure: :meth:`ErasureReceipt.matches`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from engramdb.schemas.common import PublicModel

SubjectKind = Literal["user", "agent", "session", "document", "repository"]
SUBJECT_KINDS: tuple[str, ...] = SubjectKind.__args__  # type: ignore[attr-defined]


def canonical_time(value: datetime) -> str:
    """``erased_at`` as the hash reads it: UTC, microseconds always written, ``Z``."""
    stamp = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(
    org_id: uuid.UUID | str, pseudonym: uuid.UUID | str, erased_at: datetime, counts: Mapping[str, int]
) -> bytes:
    """The bytes a receipt's hash is taken over: compact JSON, keys sorted, ASCII only::

    {"counts":{"message":2,…},"erased_at":"2026-12-05T10:00:00.123456Z","org_id":"…","pseudonym":"…"}
    """
    document = {
        "counts": {str(k): int(v) for k, v in counts.items()},
        "erased_at": canonical_time(erased_at),
        "org_id": str(org_id),
        "pseudonym": str(pseudonym),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def receipt_sha256(
    org_id: uuid.UUID | str, pseudonym: uuid.UUID | str, erased_at: datetime, counts: Mapping[str, int]
) -> str:
    return hashlib.sha256(canonical(org_id, pseudonym, erased_at, counts)).hexdigest()


class ErasedSubject(PublicModel):
    kind: SubjectKind
    pseudonym: uuid.UUID = Field(
        description="The random id that stands for the subject in the audit and delivery logs from now on."
    )


class ErasureReceipt(PublicModel):
    """What an erasure removed: no content and no id of the subject, only its pseudonym."""

    subject: ErasedSubject
    erased_at: datetime = Field(description="When the erasure committed (the audit row's created_at).")
    counts: dict[str, int] = Field(description="Rows removed, per table (tables with none are left out).")
    receipt_sha256: str = Field(
        description="SHA-256 (hex) of the canonical JSON of the organization id, pseudonym, erased_at and counts."
    )

    def matches(self, org_id: uuid.UUID | str) -> bool:
        """Whether ``receipt_sha256`` is the hash of this receipt's own fields in organization ``org_id``."""
        expected = receipt_sha256(org_id, self.subject.pseudonym, self.erased_at, self.counts)
        return expected == self.receipt_sha256
