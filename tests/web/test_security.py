"""The dashboard's sign-in, CSRF, headers and tenancy, over plain HTTP against the served app (no browser)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.web.conftest import Served
from tests.web.test_browser import _pages

pytestmark = pytest.mark.slow


def _token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@contextmanager
def signed_in(base: str, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60) as client:
        form = client.get("/ui/sign-in")
        done = client.post("/ui/sign-in", data={"api_key": key, "csrf": _token(form.text)})
        assert done.status_code == 303 and done.headers["location"] == "/ui/", done.text
        yield client


@pytest.fixture(scope="module")
def admin(served: Served) -> Iterator[httpx.Client]:
    with signed_in(served.base, served.key) as client:
        yield client


def test_the_session_cookie_is_httponly_strict_and_scoped(served: Served) -> None:
    with httpx.Client(base_url=served.base) as client:
        form = client.get("/ui/sign-in")
        done = client.post("/ui/sign-in", data={"api_key": served.key, "csrf": _token(form.text)})
    cookie = next(v for v in done.headers.get_list("set-cookie") if v.startswith("engram_session="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/ui" in cookie.lower()
    assert served.key not in done.text


def test_a_wrong_key_or_a_forged_form_does_not_sign_in(served: Served) -> None:
    with httpx.Client(base_url=served.base) as client:
        token = _token(client.get("/ui/sign-in").text)
        wrong = client.post("/ui/sign-in", data={"api_key": "egm_aaaaaaaaaaaa_nope", "csrf": token})
        assert wrong.status_code == 401 and "not valid" in wrong.text and "engram_session" not in wrong.cookies
        forged = client.post("/ui/sign-in", data={"api_key": served.key, "csrf": "forged"})
        assert forged.status_code == 403 and "engram_session" not in forged.cookies
    with httpx.Client(base_url=served.base) as elsewhere:  # no sign-in cookie: a form posted from another site
        assert elsewhere.post("/ui/sign-in", data={"api_key": served.key, "csrf": token}).status_code == 403


def test_sign_in_goes_back_only_to_a_dashboard_page(served: Served) -> None:
    with httpx.Client(base_url=served.base) as client:
        asked = client.get("/ui/memories?state=archived")
        assert asked.status_code == 303 and asked.headers["location"].startswith("/ui/sign-in?next=")
        form = client.get(asked.headers["location"])
        back = client.post(
            "/ui/sign-in",
            data={"api_key": served.key, "csrf": _token(form.text), "next": "/ui/memories?state=archived"},
        )
        assert back.headers["location"] == "/ui/memories?state=archived"
        client.cookies.clear()
        form = client.get("/ui/sign-in")
        away = client.post(
            "/ui/sign-in", data={"api_key": served.key, "csrf": _token(form.text), "next": "//evil.test/"}
        )
        assert away.headers["location"] == "/ui/"


def test_every_form_needs_its_csrf_token_and_this_origin(served: Served, admin: httpx.Client) -> None:
    path = f"/ui/memories/{served.seeded.memory_id}/state"
    assert admin.post(path, data={"state": "archived"}).status_code == 403
    assert admin.post(path, data={"state": "archived", "csrf": "x" * 43}).status_code == 403
    token = _token(admin.get(f"/ui/memories/{served.seeded.memory_id}").text)
    other_site = admin.post(path, data={"state": "archived", "csrf": token}, headers={"Origin": "https://evil.test"})
    assert other_site.status_code == 403
    with signed_in(served.base, served.key) as second:  # another sign-in's token is refused too
        assert second.post(path, data={"state": "archived", "csrf": token}).status_code == 403
    assert admin.get(f"/ui/memories/{served.seeded.memory_id}").text.count(">archived<") == 0


def test_the_cookie_is_useless_to_another_organization(served: Served, admin: httpx.Client) -> None:
    theirs = httpx.post(
        f"{served.base}/v1/memories",
        json={"external_user_id": "bob", "content": "Globex secret"},
        headers={"Authorization": f"Bearer {served.other_key}"},
    ).json()
    page = admin.get(f"/ui/memories/{theirs['id']}")
    assert page.status_code == 404 and "Globex secret" not in page.text
    assert "Globex secret" not in admin.get("/ui/memories").text
    # A cookie altered to name the other organization (or anything else) is not a sign-in.
    value = admin.cookies["engram_session"]
    version, payload = value.split(".")
    altered = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    forged = httpx.get(f"{served.base}/ui/memories/{theirs['id']}", cookies={"engram_session": f"{version}.{altered}"})
    assert forged.status_code == 303 and forged.headers["location"].startswith("/ui/sign-in")


def test_pages_carry_a_strict_policy_and_no_inline_script_or_style(served: Served, admin: httpx.Client) -> None:
    for name, path in _pages(served).items():
        page = admin.get(path)
        assert page.status_code == 200, f"{name}: {page.status_code} {page.text[:500]}"
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe" not in policy
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        inline = [s for s in re.findall(r"<script[^>]*>", page.text) if "src=" not in s and "application/json" not in s]
        assert not inline, f"{name}: inline script {inline}"
        in_tags = re.search(r"<style|<[a-z][^>]*\s(?:style|on[a-z]+)=", page.text)  # stored text is escaped
        assert not in_tags, f"{name}: inline style or event handler {in_tags}"
    static = admin.get("/ui/static/dashboard.js")
    assert static.status_code == 200 and static.headers["x-content-type-options"] == "nosniff"


def test_errors_are_pages_with_the_problems_title_and_detail(admin: httpx.Client) -> None:
    unknown = admin.get("/ui/memories?colour=blue")
    assert unknown.status_code == 422 and "Validation failed" in unknown.text and "colour" in unknown.text
    missing = admin.get("/ui/memories/00000000-0000-7000-8000-000000000000")
    assert missing.status_code == 404 and "Not found" in missing.text
    assert admin.get("/ui/no-such-page").status_code == 404
    bad = admin.get("/ui/search?query=x&mode=psychic")
    assert bad.status_code == 422 and "mode" in bad.text


def test_sign_out_ends_the_sign_in(served: Served) -> None:
    with signed_in(served.base, served.key) as client:
        token = _token(client.get("/ui/").text)
        out = client.post("/ui/sign-out", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/ui/sign-in"
        assert "engram_session" not in client.cookies
        assert client.get("/ui/").status_code == 303


def test_a_user_bound_key_sees_only_its_user(served: Served) -> None:
    created = httpx.post(
        f"{served.base}/v1/keys",
        json={"name": "carol's app", "scopes": ["read"], "external_user_id": "carol"},
        headers={"Authorization": f"Bearer {served.key}"},
    ).json()
    with signed_in(served.base, created["api_key"]) as carol:
        users = carol.get("/ui/users")
        assert users.status_code == 303 and users.headers["location"] == f"/ui/users/{created['user_id']}"
        assert "Alice lives in Lisbon" not in carol.get("/ui/memories").text
        assert carol.get(f"/ui/memories/{served.seeded.memory_id}").status_code == 404
        assert carol.get(f"/ui/sessions/{served.seeded.session_id}").status_code == 404
        assert carol.get("/ui/keys").status_code == 403  # admin pages need admin
        assert 'href="/ui/keys"' not in carol.get("/ui/").text
