"""The computation is the only code that reads across organizations: no other module of the package calls
``Database.federated`` (or names ``Federated``), and the federated connection itself still sees one
organization at a time: none before it enters one, only the one it entered after."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import select

import engramdb
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from tests.conftest import OrgFactory

PACKAGE = Path(engramdb.__file__).resolve().parent
ALLOWED = {"services/insights/compute.py", "storage/database.py"}


def _cross_org_uses(source: str) -> list[int]:
    """Lines that call ``<anything>.federated(...)`` or name ``Federated``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "federated":
            lines.append(node.lineno)
        elif isinstance(node, ast.Name | ast.alias) and getattr(node, "id", getattr(node, "name", "")) == "Federated":
            lines.append(node.lineno)
    return lines


def test_only_compute_reads_across_organizations() -> None:
    found = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := _cross_org_uses(path.read_text()))
    }
    assert "services/insights/compute.py" in found  # the check sees the one use it allows
    assert set(found) <= ALLOWED, f"cross-organization access outside services/insights/compute.py: {found}"


def test_the_check_catches_a_use() -> None:
    assert _cross_org_uses("async def f(db):\n    async with db.federated() as fed:\n        pass\n") == [2]
    assert _cross_org_uses("from engramdb.storage.database import Federated\n") == [1]


async def test_the_federated_connection_sees_one_organization_at_a_time(db: Database, make_org: OrgFactory) -> None:
    a, b = await make_org(), await make_org()
    o = t.organization
    async with db.federated() as fed:
        assert (await fed.conn.execute(select(o.c.org_id))).all() == []
        for org in (a, b):
            conn = await fed.enter(org.id)
            assert [r.org_id for r in await conn.execute(select(o.c.org_id))] == [org.id]
            assert [r.org_id for r in await conn.execute(select(t.api_key.c.org_id).distinct())] == [org.id]
