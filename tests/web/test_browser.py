"""The dashboard in a real Chromium: sign in, every page without a console error, edit a memory, search with
explain, the as-of control, revoke a key, stored XSS payloads that must stay text, and the keyboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Served, Watch, sign_in

pytestmark = pytest.mark.slow


def _pages(s: Served) -> dict[str, str]:
    """Every page the dashboard has, by the name its screenshot gets."""
    seeded = s.seeded
    return {
        "overview": "/ui/",
        "users": "/ui/users",
        "user": f"/ui/users/{seeded.user_id}",
        "sessions": "/ui/sessions",
        "session": f"/ui/sessions/{seeded.session_id}",
        "memories": "/ui/memories",
        "memory": f"/ui/memories/{seeded.memory_id}",
        "facts": f"/ui/facts?user_id={seeded.user_id}",
        "fact": f"/ui/facts/{seeded.closed_fact_id}",
        "entities": "/ui/entities",
        "graph": f"/ui/entities/{seeded.lisbon_entity_id}?depth=2",
        "search": "/ui/search?query=where+does+Alice+live&types=memories&types=messages&types=facts",
        "context": f"/ui/context?user_id={seeded.user_id}&query=Where+does+Alice+live",
        "documents": "/ui/documents",
        "document": f"/ui/documents/{seeded.document_id}",
        "agents": "/ui/agents",
        "agent": f"/ui/agents/{seeded.worker_agent_id}",
        "tasks": "/ui/tasks",
        "task": f"/ui/tasks/{seeded.task_id}",
        "jobs": "/ui/jobs",
        "audit": "/ui/audit",
        "webhooks": "/ui/webhooks",
        "keys": "/ui/keys",
        "grants": "/ui/governance/grants",
        "retention": "/ui/governance/retention",
        "holds": "/ui/governance/holds",
    }


SCREENSHOTS = ("overview", "user", "session", "memory", "facts", "graph", "search", "context", "document", "audit")


async def test_every_page_renders_without_console_errors(browser: Any, served: Served, shots: Path) -> None:
    watch = Watch()
    context, page = await sign_in(browser, served.base, served.key, watch)
    try:
        for name, path in _pages(served).items():
            response = await page.goto(path)
            assert response is not None and response.status == 200, f"{path}: {response and response.status}"
            await page.wait_for_load_state("load")
            assert await page.locator("main h1").count() == 1, path
            if name == "graph":
                await page.wait_for_selector("#graph[data-drawn=true] .node")
            if name in SCREENSHOTS:
                await page.screenshot(path=str(shots / f"{name}.png"), full_page=name not in ("audit", "search"))
        assert not watch.errors, watch.errors
        assert not watch.dialogs
    finally:
        await context.close()


async def test_editing_a_memory_adds_to_its_history(browser: Any, served: Served) -> None:
    watch = Watch()
    context, page = await sign_in(browser, served.base, served.key, watch)
    try:
        await page.goto(f"/ui/memories/{served.seeded.memory_id}")
        before = await page.locator("table.history tbody tr").count()
        await page.fill("#content", "Alice lives in Lisbon, in Alfama")
        await page.get_by_role("button", name="Save").click()
        await page.wait_for_url(re.compile(r"notice=updated"))
        assert await page.locator("#memory-content").inner_text() == "Alice lives in Lisbon, in Alfama"
        assert await page.locator("table.history tbody tr").count() == before + 1
        assert "Alice lives in Lisbon" in await page.locator("table.history tbody tr").last.inner_text()
        await page.get_by_role("button", name="Archive").click()
        await page.wait_for_url(re.compile(r"notice=state"))
        assert await page.locator("#memory-state").inner_text() == "archived"
        assert await page.locator("table.history tbody tr").count() == before + 2
        await page.get_by_role("button", name="Restore").click()
        await page.wait_for_url(re.compile(r"notice=state"))
        assert await page.locator("#memory-state").inner_text() == "active"
        assert not watch.errors, watch.errors
    finally:
        await context.close()


async def test_a_search_shows_why_each_result_scored(browser: Any, served: Served) -> None:
    context, page = await sign_in(browser, served.base, served.key)
    try:
        await page.goto("/ui/search")
        await page.fill("#query", "Where does Alice live")
        await page.get_by_role("button", name="Search").click()
        await page.wait_for_selector("#results")
        assert "Lisbon" in await page.locator("#results").inner_text()
        explain = page.locator("#results .result").first.locator("table.explain")
        assert await explain.locator("th", has_text="fusion (RRF)").count() == 1
        assert await explain.locator("th", has_text="final").count() == 1
        assert await explain.locator("th", has_text="vector").count() >= 1
        # A message's parts include its length against the other turns found, signed.
        turn = page.locator("#results .result", has=page.locator(".pill", has_text="message")).first
        length = turn.locator("table.explain tr", has=page.locator("th", has_text="length"))
        assert re.fullmatch(r"length\s+[+-]\d\.\d{3}", (await length.inner_text()).strip())
    finally:
        await context.close()


async def test_moving_the_as_of_time_brings_back_a_closed_fact(browser: Any, served: Served) -> None:
    """Porto held from 2019 until Lisbon closed it in 2025: true now it is not; true in 2024 it is."""
    context, page = await sign_in(browser, served.base, served.key)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    try:
        await page.goto(f"/ui/facts?user_id={served.seeded.user_id}&valid_at={now}")
        table = page.locator("#fact-table")
        assert "Alice lives in Lisbon" in await table.inner_text()
        assert "Alice lives in Porto" not in await table.inner_text()
        await page.fill("#valid_at", "2024-06-01T00:00:00")
        await page.get_by_role("button", name="Show").click()
        await page.wait_for_url(re.compile(r"valid_at=2024-06-01"))
        assert "Alice lives in Porto" in await table.inner_text()
        assert "Alice lives in Lisbon" not in await table.inner_text()
        assert await page.locator("svg line.as-of-valid").count() == 1
    finally:
        await context.close()


async def test_a_revoked_key_is_signed_out_at_once(browser: Any, served: Served) -> None:
    admin, admin_page = await sign_in(browser, served.base, served.key)
    try:
        await admin_page.goto("/ui/keys")
        await admin_page.locator("details.create summary").click()
        await admin_page.fill("input[name=name]", "reader for the test")
        await admin_page.get_by_role("button", name="Create").click()
        created = (await admin_page.locator("#new-key").inner_text()).strip()
        assert created.startswith("egm_")
        await admin_page.goto("/ui/keys")
        assert created not in await admin_page.content()  # shown once
        reader, reader_page = await sign_in(browser, served.base, created)
        try:
            await reader_page.goto(f"/ui/memories/{served.seeded.memory_id}")
            assert await reader_page.locator("#memory-content").count() == 1
            assert await reader_page.get_by_role("button", name="Save").count() == 0  # a read key edits nothing
            assert await reader_page.get_by_role("link", name="Keys").count() == 0  # nor sees admin pages
            row = admin_page.locator("#keys tr", has_text="reader for the test")
            await row.get_by_role("button", name=re.compile("Revoke")).click()
            await admin_page.wait_for_url(re.compile(r"notice=revoked"))
            await reader_page.reload()
            await reader_page.wait_for_url(re.compile(r"/ui/sign-in"))
            assert "revoked" in await reader_page.locator(".problem").inner_text()
        finally:
            await reader.close()
    finally:
        await admin.close()


async def test_stored_script_payloads_stay_text(browser: Any, served: Served) -> None:
    """Messages, memories, an entity's name, a document's title, a task's title and an agent message hold
    <script>, onerror= and onload= payloads: on every page that shows them they are text, nothing runs, no
    dialog opens."""
    seeded = served.seeded
    watch = Watch()
    context, page = await sign_in(browser, served.base, served.key, watch)
    try:
        for path, shown in (
            (f"/ui/sessions/{seeded.session_id}", '<script>window.__xss = "script"</script>'),
            (f"/ui/memories/{seeded.xss_memory_id}", "onerror="),
            ("/ui/memories", "onerror="),
            (f"/ui/entities/{seeded.xss_entity_id}", "<svg onload="),
            (f"/ui/entities/{seeded.lisbon_entity_id}?depth=2", "<svg onload="),
            ("/ui/entities?q=svg", "<svg onload="),
            (f"/ui/facts?user_id={seeded.user_id}", "<svg onload="),
            ("/ui/documents", "<script>"),
            (f"/ui/documents/{seeded.document_id}", "<script>"),
            ("/ui/search?query=window+xss+onerror+script&types=messages&types=memories&types=documents", "<script>"),
            ("/ui/", "onerror="),
            ("/ui/tasks", "<script>"),
            (f"/ui/agents/{seeded.worker_agent_id}", "onerror="),
        ):
            await page.goto(path)
            await page.wait_for_load_state("load")
            assert shown in await page.locator("body").inner_text(), f"{path} does not show the payload as text"
            assert await page.evaluate("window.__xss") is None, f"a payload ran on {path}"
        assert not watch.dialogs, watch.dialogs
        assert not watch.errors, watch.errors
    finally:
        await context.close()


async def test_sign_in_and_the_main_navigation_work_from_the_keyboard(browser: Any, served: Served) -> None:
    context = await browser.new_context(base_url=served.base)
    page = await context.new_page()
    try:
        await page.goto("/")
        await page.wait_for_url(re.compile(r"/ui/sign-in"))
        # Autofocus: Chromium applies it at a rendering update, which may come after the load event; wait
        # for it (up to 5 s), and fail if it never comes.
        await page.wait_for_function("document.activeElement && document.activeElement.id === 'api_key'", timeout=5000)
        await page.keyboard.type(served.key)
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r"/ui/$"))
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        for _ in range(12):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.textContent") == "Memories":
                break
        else:
            raise AssertionError("Tab never reached the Memories link")
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r"/ui/memories$"))
        assert await page.locator("nav[aria-label=Main] a[aria-current=page]").inner_text() == "Memories"
    finally:
        await context.close()
