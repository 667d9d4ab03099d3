from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from engramdb._version import __version__
from engramdb.api.deps import DbDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str
    version: str


@router.get("/health", operation_id="get_health", response_model=Health, summary="Liveness and database check")
async def health(db: DbDep) -> Health:
    """No authentication. 200 when the database answers; 503 problem+json when it does not."""
    await db.ping()
    return Health(status="ok", database="ok", version=__version__)
