"""The dashboard under test: one real ``uvicorn`` server of the app for the package (on a fresh database of
the session's embedded PostgreSQL), seeded through the API, and one headless Chromium driven by Playwright.

The browser is Debian's Chromium (``apt-get install chromium``; ``.ci/run`` installs it): Playwright's own
browser download does not work here. Without it the browser tests are skipped, unless
``ENGRAM_REQUIRE_BROWSER=1`` (CI), where a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from engramdb.config import Settings
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database
from tests.conftest import PgServer, fresh_database
from tests.web.seed import Seeded, seed

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "dashboard"


@dataclass
class Served:
    base: str
    key: str  # an admin key of the org the seed wrote
    other_key: str  # an admin key of another org
    seeded: Seeded
    database_url: str


def browser_path() -> str:
    """Debian's Chromium, or a skip (a failure when ENGRAM_REQUIRE_BROWSER=1)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = None
    if found is None:
        missing = "Chromium is not installed (apt-get install -y chromium)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            missing = "Playwright is not installed (pip install -e '.[dev]')"
    if missing is not None:
        if os.environ.get("ENGRAM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"ENGRAM_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    assert found is not None
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="package")
async def served(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    url = fresh_database(pg_server)
    db = Database.connect(Settings(database_url=url, auto_migrate=False))
    try:
        _, admin = await keys.create_organization(db, name="acme")
        _, other = await keys.create_organization(db, name="globex")
    finally:
        await db.dispose()
    data_dir = tmp_path_factory.mktemp("web")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env.update(
        {
            "ENGRAM_DATABASE_URL": url,
            "ENGRAM_DATA_DIR": str(data_dir),
            "ENGRAM_AUTO_MIGRATE": "false",
            "ENGRAM_KEY_TOUCH_INTERVAL_S": "0",
            "ENGRAM_LOG_LEVEL": "warning",
            # A webhook to the tests' listener on 127.0.0.1 fails at its first refusal (then it can be replayed).
            "ENGRAM_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
            "ENGRAM_WEBHOOK_MAX_ATTEMPTS": "1",
        }
    )
    log_path = data_dir / "uvicorn.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "engramdb.server:create_app_from_env", "--factory"]
            + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"uvicorn exited: {log_path.read_text()}")
                try:
                    if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server did not become healthy: {log_path.read_text()}")
                time.sleep(0.1)
            print(f"[web] healthy after {time.monotonic() - started:.1f} s", file=sys.stderr)
            seeded = seed(base, admin.api_key)
            print(f"[web] seeded after {time.monotonic() - started:.1f} s", file=sys.stderr)
            yield Served(
                base=base,
                key=admin.api_key,
                other_key=other.api_key,
                seeded=seeded,
                database_url=url,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Watch:
    """What a page said that a person would not see: console errors, uncaught exceptions, dialogs."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> Any:
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

        async def dismiss(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", dismiss)
        return page


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Any]:
    path = browser_path()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def sign_in(browser: Any, base: str, key: str, watch: Watch | None = None) -> tuple[Any, Any]:
    """A new browser context signed in with ``key``: (context, page)."""
    context = await browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    if watch is not None:
        watch.attach(page)
    await page.goto("/ui/")
    await page.fill("#api_key", key)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/ui/")
    return context, page


@pytest.fixture
def shots() -> Iterator[Path]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield SHOTS
