"""The import rules, in one place: layers point one way, services areas import downward, transports do not
import each other, and no module imports itself back through a cycle.

Everything here reads the source with ``ast`` (nothing is imported, no database): every ``import`` and
``from … import`` of every module under ``src/engramdb``, at module level, inside functions and inside
``if TYPE_CHECKING:`` alike. A type-only import is still a dependency of the design (and the day someone
moves it out of the guard, it is a runtime one), so the rules apply to it too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "engramdb"
SERVICES = "engramdb.services"

# The services areas, lowest first (CONVENTIONS.md, "Layout"). An area may import itself and any area on an
# earlier line; areas on one line are siblings and never import each other. A new area is placed by adding
# it here (a word on a line, or a line); an area folder missing from this table fails the test.
AREA_ORDER: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("tenancy", "webhooks"),
    ("conversation",),
    ("memory", "graph", "document", "contexts"),
    ("distill", "search"),
    ("governance", "agents", "insights"),
    ("maintenance",),  # may import any area; none imports it
)
AREA_RANK = {area: rank for rank, group in enumerate(AREA_ORDER) for area in group}
ORDER_TEXT = " < ".join(" | ".join(group) for group in AREA_ORDER)

# Each transport is a thin entry over the services; none imports another (CONVENTIONS.md, example 6). What
# they share comes from the composition roots, which are not transports: ``engramdb.bootstrap`` (the runtime
# and its background tasks, the job worker among them) and ``engramdb.server`` (the one ASGI app of
# ``engramdb serve``: the API under /v1 and the MCP endpoint at /mcp, put together there).
TRANSPORTS = ("api", "cli", "mcp", "sdk", "web", "jobs")
COMPOSITION = ("engramdb.bootstrap", "engramdb.server")

# The transport-to-transport edges that exist by design, (importer, imported) as module prefixes, each with
# its reason. Anything else between transports fails ``test_transports_do_not_import_each_other``, and an
# entry no module uses any more fails ``test_allowed_transport_edges_are_still_used`` (delete the line).
# Deliberately absent: ``engramdb.api`` from ``mcp/stdio.py`` or any CLI module but ``cli/connect.py`` (the
# stdio server and the in-process CLI enter ``engramdb.bootstrap`` instead of borrowing the HTTP app's
# lifespan);
# ``engramdb.jobs`` from ``api`` or ``cli`` (the worker is a background task of the composition root,
# ``running(settings, worker=…)``); ``engramdb.mcp.http`` from ``api`` (``engramdb.server`` mounts it).
ALLOWED_TRANSPORT_EDGES: dict[tuple[str, str], str] = {
    ("engramdb.cli", "engramdb.sdk"): (
        "the CLI goes through the SDK: its record commands are SDK calls, in-process to this machine's "
        "service or over HTTP to a remote one (--url), so the CLI cannot drift from the API"
    ),
    ("engramdb.cli.connect", "engramdb.api"): (
        "the in-process client (CONVENTIONS.md, example 8): a local CLI command drives the API's ASGI app "
        "through the SDK, over the runtime it got from engramdb.bootstrap, so local and remote calls take "
        "the same checks and errors"
    ),
    ("engramdb.cli.main", "engramdb.mcp.stdio"): (
        "`engramdb mcp` is the stdio MCP server's entry point: the command only starts it (imported inside "
        "the command, so the other commands do not load the MCP SDK)"
    ),
}

_TRANSPORT_PACKAGES = tuple(f"engramdb.{t}" for t in TRANSPORTS)
_FRAMEWORKS = ("fastapi", "starlette", "sse_starlette", "uvicorn", "typer", "mcp")

# What each layer must never import (a module or package name and everything under it).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # Services are domain operations: no HTTP, CLI or MCP words, and no transport or composition root.
    "services": (*_FRAMEWORKS, *_TRANSPORT_PACKAGES, *COMPOSITION),
    # Storage and providers sit under the services: data flows transport → services → storage/providers.
    "storage": (*_FRAMEWORKS, *_TRANSPORT_PACKAGES, *COMPOSITION, "engramdb.services"),
    "providers": (*_FRAMEWORKS, *_TRANSPORT_PACKAGES, *COMPOSITION, "engramdb.services"),
    # Wire models are shared by api, sdk and mcp: plain pydantic, nothing from the server.
    "schemas": (
        "fastapi",
        "starlette",
        "typer",
        "sqlalchemy",
        *_TRANSPORT_PACKAGES,
        *COMPOSITION,
        "engramdb.services",
        "engramdb.storage",
    ),
    # The SDK is the client: it runs where the server is not installed.
    "sdk": (
        *_FRAMEWORKS,
        "sqlalchemy",
        "engramdb.api",
        "engramdb.cli",
        "engramdb.mcp",
        "engramdb.web",
        "engramdb.jobs",
        *COMPOSITION,
        "engramdb.services",
        "engramdb.storage",
        "engramdb.providers",
    ),
    # Transports call operations; they never reach into tables or build SQL.
    "cli": ("engramdb.storage.tables", "sqlalchemy"),
    "api": ("engramdb.storage.tables", "sqlalchemy"),
    "mcp": ("engramdb.storage.tables", "sqlalchemy", "fastapi", "typer"),
    # The dashboard renders what the operations return (Starlette and Jinja2, not the API's FastAPI app).
    "web": ("engramdb.storage", "sqlalchemy", "fastapi", "typer"),
}

SMALL_MODULE_LINES = 400
KEPT_WHOLE = "kept whole because"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted (a package is named by its ``__init__``'s package)
    target: str  # the imported module, dotted, relative imports resolved, ``from X import sub`` as ``X.sub``
    line: int
    in_function: bool  # inside a ``def`` (it runs when called, not when the module loads)
    type_checking: bool  # under ``if TYPE_CHECKING:`` (never runs)

    def __str__(self) -> str:
        where = " inside a function" if self.in_function else ""
        where += " under TYPE_CHECKING" if self.type_checking else ""
        return f"{self.source} (line {self.line}) imports {self.target}{where}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source_files() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py")) if "__pycache__" not in p.parts}


MODULES = _source_files()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.functions = 0
        self.type_checking = 0
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt) -> None:
        self.found.append(Import(self.module, target, node.lineno, self.functions > 0, self.type_checking > 0))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_checking += 1
        for child in node.body:
            self.visit(child)
        self.type_checking -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        for alias in node.names:
            # ``from X import name`` imports the submodule ``X.name`` when there is one (a file or a package).
            sub = f"{module}.{alias.name}"
            self._add(sub if sub in MODULES else module, node)


def _collect() -> list[Import]:
    found: list[Import] = []
    for module, path in MODULES.items():
        collector = _Collector(module, path.name == "__init__.py")
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        found.extend(dict.fromkeys(collector.found))  # one per (target, line, kind)
    return found


IMPORTS = _collect()


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _area(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and _under(module, SERVICES) else None


def _transport(module: str) -> str | None:
    return next((t for t in TRANSPORTS if _under(module, f"engramdb.{t}")), None)


def _rel(module: str) -> str:
    return str(MODULES[module].relative_to(ROOT))


def test_the_parser_sees_every_kind_of_import() -> None:
    """Guards the walker itself: relative, submodule, function-level and TYPE_CHECKING imports."""
    source = "\n".join(
        [
            "from typing import TYPE_CHECKING",
            "from . import memories",
            "from ..core import caller",
            "from .memories import update",
            "if TYPE_CHECKING:",
            "    from engramdb.services.graph import facts",
            "def f():",
            "    import engramdb.services.search.hybrid",
            "    from engramdb.services.memory import not_a_module",
        ]
    )
    collector = _Collector("engramdb.services.memory.tags", is_package=False)
    collector.visit(ast.parse(source))
    seen = {(i.target, i.in_function, i.type_checking) for i in collector.found}
    assert seen == {
        ("typing", False, False),
        ("engramdb.services.memory.memories", False, False),
        ("engramdb.services.core.caller", False, False),
        ("engramdb.services.graph.facts", False, True),
        ("engramdb.services.search.hybrid", True, False),
        ("engramdb.services.memory", True, False),
    }


def _graph() -> dict[str, dict[str, Import]]:
    """The module graph: an edge per imported engramdb module, with one import that makes it.

    A package's ``__init__`` importing its own submodules is an edge like any other: Python runs the
    ``__init__`` first, so a submodule that imports a name back from its package while the ``__init__``
    imports that submodule meets a partially initialised module, the classic cycle. The implicit import of
    parent packages (``import a.b.c`` runs ``a`` and ``a.b`` first) is not an edge: it always happens
    before the child runs, so it cannot make a module see a half-built one, and counting it would make
    every package whose ``__init__`` re-exports a submodule a cycle."""
    graph: dict[str, dict[str, Import]] = {module: {} for module in MODULES}
    for imp in IMPORTS:
        if imp.target in MODULES:
            graph[imp.source].setdefault(imp.target, imp)
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module, or of one that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _one_cycle(graph: dict[str, dict[str, Import]], component: list[str]) -> list[Import]:
    """The shortest cycle through the component's first module (breadth first, inside the component)."""
    start, members = component[0], set(component)
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    for node in queue:
        for nxt, imp in graph[node].items():
            if nxt == start:
                return [*paths[node], imp]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], imp]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def test_no_import_cycle() -> None:
    """Module-level and function-level imports both count: a function-level import does not remove a
    cycle, it only postpones it to the first call (and hides it from the reader)."""
    graph = _graph()
    cycles = [_one_cycle(graph, component) for component in _strongly_connected(graph)]
    assert not cycles, "import cycles (one per strongly connected group):\n" + "\n".join(
        " → ".join(str(imp) for imp in cycle) for cycle in cycles
    )


def test_services_is_only_area_folders() -> None:
    services = SRC / "services"
    loose = sorted(p.name for p in services.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules directly in services/ (move each into the area whose noun it serves): {loose}"
    unplaced = sorted(
        p.name for p in services.iterdir() if p.is_dir() and p.name != "__pycache__" and p.name not in AREA_RANK
    )
    assert not unplaced, f"areas missing from AREA_ORDER in tests/test_imports.py (place them): {unplaced}"


def test_areas_import_downward() -> None:
    offences = []
    for imp in IMPORTS:
        source, target = _area(imp.source), _area(imp.target)
        if source is None or target is None or source == target:
            continue
        if source not in AREA_RANK or target not in AREA_RANK:
            continue  # an unplaced area fails test_services_is_only_area_folders
        if AREA_RANK[target] < AREA_RANK[source]:
            continue
        below = [a for group in AREA_ORDER[: AREA_RANK[source]] for a in group]
        relation = "a sibling" if AREA_RANK[target] == AREA_RANK[source] else "above it"
        may = f"only itself and {', '.join(below)}" if below else "only itself"
        offences.append(f"{imp}: {source} may import {may}; {target} is {relation}")
    assert not offences, f"services areas import downward ({ORDER_TEXT}):\n" + "\n".join(offences)


def test_no_function_level_import_crosses_areas() -> None:
    """An import inside a function that reaches another area (or, from services, a transport) hides a
    dependency, usually a cycle, even where the order would allow it at module level: move it to the
    top, or make the cross-area step its own operation in the area above both (CONVENTIONS.md, 2)."""
    offences = []
    for imp in IMPORTS:
        source = _area(imp.source)
        if not imp.in_function or source is None:
            continue
        target = _area(imp.target)
        if target is not None and target != source:
            offences.append(f"{imp}: crosses from {source} to {target}")
        elif _transport(imp.target) is not None:
            offences.append(f"{imp}: a service reaches a transport")
    assert not offences, "function-level imports across areas:\n" + "\n".join(offences)


def test_area_modules_stay_small() -> None:
    """Most modules stay under ~400 lines (CONVENTIONS.md, "Habits"). The rule: a module under
    ``services/`` of more than 400 lines (physical lines, as ``wc -l`` counts them) is split, or its
    module docstring says why it is one module, with the words "kept whole because" followed by the
    reason. One fixed phrase keeps the exceptions easy to find (``grep -r "kept whole because" src``)."""
    offences = []
    for module, path in MODULES.items():
        if _area(module) is None:
            continue
        text = path.read_text()
        lines = len(text.splitlines())
        docstring = " ".join((ast.get_docstring(ast.parse(text)) or "").split()).lower()
        if lines > SMALL_MODULE_LINES and KEPT_WHOLE not in docstring:
            offences.append(f"{_rel(module)}: {lines} lines, and its docstring does not say '{KEPT_WHOLE} …'")
    assert not offences, f"modules over {SMALL_MODULE_LINES} lines: split them or say why:\n" + "\n".join(offences)


def _transport_edges() -> Iterator[tuple[Import, tuple[str, str] | None]]:
    """Every import from one transport into another, with the allowed edge that covers it (or None)."""
    for imp in IMPORTS:
        source, target = _transport(imp.source), _transport(imp.target)
        if source is None or target is None or source == target:
            continue
        allowed = next(
            (edge for edge in ALLOWED_TRANSPORT_EDGES if _under(imp.source, edge[0]) and _under(imp.target, edge[1])),
            None,
        )
        yield imp, allowed


def test_transports_do_not_import_each_other() -> None:
    offences = [
        f"{imp}: {_transport(imp.source)} must not import {_transport(imp.target)} (share it through "
        "engramdb.bootstrap or engramdb.server, or add the edge with its reason to ALLOWED_TRANSPORT_EDGES)"
        for imp, allowed in _transport_edges()
        if allowed is None
    ]
    assert not offences, "transports importing each other:\n" + "\n".join(offences)


def test_allowed_transport_edges_are_still_used() -> None:
    used = {allowed for _, allowed in _transport_edges()}
    stale = [f"{a} → {b}" for a, b in ALLOWED_TRANSPORT_EDGES if (a, b) not in used]
    assert not stale, f"no module uses these allowed edges any more; delete them from the table: {stale}"


def test_layers_point_one_way() -> None:
    """Data flows transport → services → storage/providers (ARCHITECTURE.md, 1)."""
    offences: dict[str, list[str]] = defaultdict(list)
    for imp in IMPORTS:
        layer = imp.source.split(".")[1] if "." in imp.source else ""
        banned = next((b for b in FORBIDDEN.get(layer, ()) if _under(imp.target, b)), None)
        if banned is not None:
            offences[layer].append(f"{imp} (banned in {layer}/: {banned})")
    assert not offences, "\n".join(line for lines in offences.values() for line in lines)
