"""A method a path does not take is a 405 problem whose Allow header lists every method the path takes."""

from __future__ import annotations

import pytest

from tests.conftest import Org, assert_problem


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/memories", {"GET", "HEAD", "POST"}),
        ("DELETE", "/v1/sessions", {"GET", "HEAD", "POST"}),
        ("DELETE", "/v1/search", {"POST"}),
        ("POST", "/v1/health", {"GET", "HEAD"}),
        # Paths a route names literally, though a template fits them too (/v1/documents/{document_id}):
        # not a 422 for "upload" as an id.
        ("PATCH", "/v1/documents/upload", {"POST"}),
        ("GET", "/v1/tasks/claim", {"POST"}),
        ("PUT", "/v1/tasks/claim", {"POST"}),
    ],
)
async def test_405_names_every_allowed_method(org: Org, method: str, path: str, allowed: set[str]) -> None:
    r = await org.client.request(method, path)
    body = assert_problem(r, 405)
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed
    assert method in str(body["detail"])
    # With a query parameter the route with the template does not take, still the 405 (not a 422 for it).
    r = await org.client.request(method, path, params={"background": "true"})
    body = assert_problem(r, 405)
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed
    assert method in str(body["detail"])


async def test_every_route_of_the_api_answers_405_with_allow(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    """For each path in the OpenAPI document, a method it does not take gets 405 with a full Allow."""
    for path, ops in app.openapi()["paths"].items():
        taken = {m.upper() for m in ops}
        unused = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in taken)
        concrete = path.replace("{", "").replace("}", "")
        r = await org.client.request(unused, concrete)
        assert r.status_code == 405, f"{unused} {path}: {r.status_code}"
        assert taken <= {m.strip() for m in r.headers["allow"].split(",")}, f"{unused} {path}: {r.headers['allow']}"


async def test_the_servers_address_leads_to_the_dashboard(anon) -> None:  # type: ignore[no-untyped-def]
    r = await anon.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
    assert (await anon.get("/docs")).status_code == 200  # the API docs stay where they were


async def test_a_dashboard_page_answers_405_with_its_methods(anon) -> None:  # type: ignore[no-untyped-def]
    """The dashboard's pages are not in the API's document: their Allow comes from their routes."""
    r = await anon.post("/ui/search")
    body = assert_problem(r, 405)
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD"}
    assert str(body["detail"]).endswith("this path takes GET, HEAD")
