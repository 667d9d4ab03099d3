"""Health: ``/health`` (the database answers), and the probes an orchestrator asks, ``/health/live`` (the
process answers: restart it if not) and ``/health/ready`` (send it traffic: the database answers and its
schema is current). None needs a key or takes a parameter."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from engramdb._version import __version__
from engramdb.api.deps import DbDep
from engramdb.storage.migrate import check_ready

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


class Liveness(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    database: str
    schema_revision: str
    version: str


@router.get("/health/live", operation_id="get_liveness", response_model=Liveness, summary="Liveness probe")
async def live() -> Liveness:
    """No authentication, no database: 200 whenever the process's event loop answers (restart it if not)."""
    return Liveness(status="ok", version=__version__)


@router.get("/health/ready", operation_id="get_readiness", response_model=Readiness, summary="Readiness probe")
async def ready(db: DbDep) -> Readiness:
    """No authentication. 200 when the database answers and its schema is at this version's migration
    head; 503 problem+json with ``Retry-After`` otherwise (the database down or restarting, or a
    migration pending)."""
    revision = await check_ready(db)
    return Readiness(status="ok", database="ok", schema_revision=revision, version=__version__)
