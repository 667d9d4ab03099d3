"""Categories: built-in ones and an organization's own, assigned to memories as they are extracted.

With an LLM, the extractor picks categories from the names it is given. Otherwise (or when it picks
none) a memory gets the categories whose description its embedding is closest to, above ``MATCH``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids, limits
from engramdb.errors import Conflict, InvalidRequest, NotFound
from engramdb.schemas.categories import Category, CategoryCreate, CategoryFilters, CategoryUpdate
from engramdb.schemas.common import Page
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.storage import tables as t
from engramdb.storage.pagination import BAD_CURSOR, decode_cursor, encode_cursor

c = t.category

BUILTIN: dict[str, str] = {
    "personal": "personal details about someone: name, age, birthday, where they live or come from, identity",
    "family": "family members and relatives: parents, children, siblings, spouse, partner",
    "relationships": "friends, partners, dating, colleagues and other relationships between people",
    "work": "job, career, employer, colleagues, projects at work, profession",
    "education": "school, university, studies, courses, classes, learning, degrees",
    "health": "health, illness, medical conditions, allergies, fitness, exercise, mental health, therapy",
    "food": "food, cooking, recipes, diet, restaurants and drinks someone likes or avoids",
    "travel": "travel, trips, vacations, places visited or planned, moving to a new city",
    "hobbies": "hobbies and leisure: painting, music, reading, sports, games, crafts, outdoor activities",
    "entertainment": "movies, books, TV shows, music, concerts and media someone enjoys",
    "pets": "pets and animals: dogs, cats and other animals someone has or cares for",
    "finance": "money, budget, spending, savings, salary, purchases, bills",
    "goals": "goals, plans, intentions, ambitions, things someone wants or hopes to do",
    "events": "events that happened: parties, meetings, celebrations, trips, accidents, milestones",
    "preferences": "likes, dislikes, favourites and preferences in general",
    "technology": "software, computers, programming, devices, apps and technical setup",
    "community": "volunteering, activism, support groups, charity, community and social causes",
}
MATCH = 0.35  # cosine of a memory to a category's description for the category to apply
MAX_PER_MEMORY = 2


async def all_categories(conn: AsyncConnection, org_id: uuid.UUID) -> dict[str, str]:
    """name → description: built-ins first, then the org's own (an org's category may redefine a built-in)."""
    rows = (await conn.execute(select(c.c.name, c.c.description).where(c.c.org_id == org_id))).all()
    return {**BUILTIN, **{r.name: r.description for r in rows}}


async def assign(rt: Runtime, categories: dict[str, str], vectors: Sequence[list[float]]) -> list[list[str]]:
    """For each memory vector, the best-matching categories (at most ``MAX_PER_MEMORY``)."""
    if not vectors or not categories:
        return [[] for _ in vectors]
    names = list(categories)
    # Descriptions are embedded as queries so the embedder's query cache keeps them between jobs.
    described = await rt.embedder.embed_batch([categories[n] for n in names], kind="query")
    out = []
    for vector in vectors:
        scores = sorted(((_cosine(vector, d), n) for d, n in zip(described, names, strict=True)), reverse=True)
        out.append([n for s, n in scores[:MAX_PER_MEMORY] if s >= MATCH])
    return out


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


# --- the API -------------------------------------------------------------------------------------------


async def list_categories(rt: Runtime, caller: Caller, filters: CategoryFilters) -> Page[Category]:
    """Built-in and custom categories in name order (an org's category named as a built-in replaces it),
    paged by name. They are few (``limits.MAX_CATEGORIES`` of the org's own), so one query reads them all."""
    caller.require("read")
    after: str | None = None
    if filters.cursor is not None:
        (after,) = decode_cursor(filters.cursor, size=1)
        if not isinstance(after, str):
            raise InvalidRequest(BAD_CURSOR)
    async with rt.db.tenant(caller.org_id) as conn:
        rows = (await conn.execute(select(c).where(c.c.org_id == caller.org_id))).mappings().all()
    own = {
        r["name"]: Category(
            id=r["id"], name=r["name"], description=r["description"], builtin=False, created_at=r["created_at"]
        )
        for r in rows
    }
    builtin = {n: Category(id=None, name=n, description=d, builtin=True) for n, d in BUILTIN.items()}
    merged = sorted({**builtin, **own}.values(), key=lambda cat: cat.name)
    rest = [cat for cat in merged if after is None or cat.name > after]
    page = rest[: filters.limit]
    next_cursor = encode_cursor([page[-1].name]) if len(rest) > filters.limit else None
    return Page[Category](data=page, next_cursor=next_cursor)


async def create(rt: Runtime, caller: Caller, body: CategoryCreate) -> Category:
    caller.require("admin")
    async with rt.db.tenant(caller.org_id) as conn:
        count = await conn.scalar(select(func.count()).select_from(c).where(c.c.org_id == caller.org_id))
        if (count or 0) >= limits.MAX_CATEGORIES:
            raise InvalidRequest(f"an organization may define at most {limits.MAX_CATEGORIES} categories")
        exists = await conn.scalar(select(c.c.id).where(c.c.org_id == caller.org_id, c.c.name == body.name))
        if exists is not None:
            raise Conflict(f"category '{body.name}' already exists")
        row = (
            (
                await conn.execute(
                    insert(c)
                    .values(org_id=caller.org_id, id=ids.uuid7(), name=body.name, description=body.description)
                    .returning(c)
                )
            )
            .mappings()
            .one()
        )
        await audit.record(conn, caller, "category.created", "category", row["id"], {"name": body.name})
    return Category(
        id=row["id"], name=row["name"], description=row["description"], builtin=False, created_at=row["created_at"]
    )


async def update_category(rt: Runtime, caller: Caller, category_id: uuid.UUID, body: CategoryUpdate) -> Category:
    caller.require("admin")
    async with rt.db.tenant(caller.org_id) as conn:
        row = (
            (
                await conn.execute(
                    update(c)
                    .where(c.c.org_id == caller.org_id, c.c.id == category_id)
                    .values(description=body.description, updated_at=func.now())
                    .returning(c)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"category {category_id} not found")
        await audit.record(conn, caller, "category.updated", "category", category_id, {})
    return Category(
        id=row["id"], name=row["name"], description=row["description"], builtin=False, created_at=row["created_at"]
    )


async def delete_category(rt: Runtime, caller: Caller, category_id: uuid.UUID) -> None:
    """Removes the definition; memories already filed under it keep the name."""
    caller.require("admin")
    async with rt.db.tenant(caller.org_id) as conn:
        name = await conn.scalar(
            delete(c).where(c.c.org_id == caller.org_id, c.c.id == category_id).returning(c.c.name)
        )
        if name is None:
            raise NotFound(f"category {category_id} not found")
        await audit.record(conn, caller, "category.deleted", "category", category_id, {"name": name})
