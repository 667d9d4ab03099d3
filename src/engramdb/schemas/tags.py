"""Tags: one model for sessions, messages, memories, documents and repositories (``Tags`` in common)."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from engramdb import limits
from engramdb.schemas.common import PageQuery, PublicModel, StrictModel, Tag


class TagTypeCounts(PublicModel):
    """How many items of each kind carry a tag (or had it renamed)."""

    session: int = 0
    message: int = 0
    memory: int = 0
    document: int = 0
    repository: int = 0


class TagCount(PublicModel):
    tag: str
    count: int = Field(description="Items carrying the tag, of every kind.")
    by_type: TagTypeCounts


class TagFilters(PageQuery):
    """``GET /tags``, most used first."""

    prefix: str | None = Field(default=None, max_length=limits.MAX_TAG_CHARS, description="Tags starting with this.")


class TagRename(StrictModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Tag = Field(alias="from", description="The tag to rename.")
    to: Tag = Field(description="Its new name; items that already carry it keep one copy.")

    @model_validator(mode="after")
    def _differ(self) -> TagRename:
        if self.from_ == self.to:
            raise ValueError("from and to are the same tag")
        return self


class TagRenameResult(PublicModel):
    tag: str = Field(description="The new name.")
    renamed: TagTypeCounts
    total: int
