"""The UI's pages through the real app: redirects, scoping, escaping, headers, static files."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from kaapana.web.assets import CACHE_FOREVER
from kaapana.web.security import CONTENT_SECURITY_POLICY, safe_next
from tests.web.conftest import ADMIN_PASSWORD, HOSTILE_DESCRIPTION, HOSTILE_NAME, login


def test_pages_redirect_to_login_with_where_they_were_going(web: TestClient) -> None:
    response = web.get("/p/A/studies?offset=50", follow_redirects=False)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/p/A/studies?offset=50"]}
    assert web.get("/admin/users", follow_redirects=False).headers["location"] == (
        "/login?next=/admin/users"
    )


def test_an_expired_session_cookie_also_redirects_to_login(web: TestClient) -> None:
    web.cookies.set("kaapana_session", "not-a-session")
    response = web.get("/p/A/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\\evil.example/",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\t/evil.example/",
        "evil.example",
        "",
    ],
)
def test_next_never_leaves_the_site(web: TestClient, target: str) -> None:
    assert safe_next(target) == "/"
    page = web.get("/login", params={"next": target})
    assert page.status_code == 200
    assert '{"next": "/"}' in page.text


def test_next_keeps_a_path_on_this_site(web: TestClient) -> None:
    assert safe_next("/p/A/studies?offset=50") == "/p/A/studies?offset=50"
    assert (
        '"next": "/p/A/studies?offset=50"' in web.get("/login?next=/p/A/studies%3Foffset%3D50").text
    )


def test_ui_responses_carry_the_security_headers(web: TestClient) -> None:
    for path in ("/login", "/p/A/", "/static/none/app.css"):
        response = web.get(path, follow_redirects=False)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY.split("script-src")[1].split(";")[0]
    # The OpenAPI page runs inline scripts of its own; it stays outside the UI's policy.
    assert "content-security-policy" not in web.get("/api/docs").headers


def test_static_files_are_hashed_and_cached_forever(web: TestClient) -> None:
    page = web.get("/login").text
    urls = re.findall(r'(?:src|href)="(/static/[0-9a-f]{12}/[^"]+)"', page)
    assert {u.rsplit("/", 1)[1] for u in urls} >= {"app.css", "login.js"}
    for url in urls:
        response = web.get(url)
        assert response.status_code == 200
        assert response.headers["cache-control"] == CACHE_FOREVER
    script = web.get(next(u for u in urls if u.endswith(".js")))
    assert script.headers["content-type"].startswith("text/javascript")
    version = urls[0].split("/")[2]
    assert web.get(f"/static/{'0' * 12}/app.css").status_code == 404
    assert web.get(f"/static/{version}/missing.js").status_code == 404


def test_the_login_page_passes_a_signed_in_user_on(web: TestClient) -> None:
    login(web, "sci_a")
    response = web.get("/login", params={"next": "/p/A/studies"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/p/A/studies"
    evil = web.get("/login", params={"next": "//evil.example/"}, follow_redirects=False)
    assert evil.headers["location"] == "/"


def test_root_sends_a_user_to_the_first_project(web: TestClient) -> None:
    login(web, "sci_b")
    response = web.get("/", follow_redirects=False)
    assert response.headers["location"] == "/p/B/"


def test_a_project_page_shows_only_that_project(web: TestClient) -> None:
    login(web, "sci_ab")
    home_a, home_b = web.get("/p/A/").text, web.get("/p/B/").text
    assert "PA" in home_a and "Bravo^Bob" not in home_a
    assert "Bravo^Bob" in home_b and "PA" not in home_b
    studies_b = web.get("/p/B/studies").text
    assert "Bravo^Bob" in studies_b and "PA" not in studies_b
    assert re.search(r"<dt>Series</dt><dd>2</dd>", home_a)
    assert re.search(r"<dt>Instances</dt><dd>3</dd>", home_b)
    assert 'href="/p/B/studies"' in web.get("/p/A/studies").text  # the switcher keeps the view


def test_a_project_the_user_is_not_in_is_not_found(web: TestClient) -> None:
    login(web, "sci_a")
    response = web.get("/p/B/")
    assert response.status_code == 404
    assert "project &#39;B&#39; not found" in response.text
    assert 'href="/p/B/' not in web.get("/p/A/").text


def test_dicom_strings_are_escaped_in_the_html(web: TestClient) -> None:
    login(web, "sci_a")
    for path in ("/p/A/", "/p/A/studies"):
        page = web.get(path).text
        assert HOSTILE_NAME not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_administration_is_for_administrators(web: TestClient) -> None:
    login(web, "sci_ab")
    for path in ("/admin/projects", "/admin/users", "/admin/nodes", "/admin/audit"):
        response = web.get(path)
        assert response.status_code == 403
        assert "only an instance administrator" in response.text
    assert "Administration" not in web.get("/p/A/").text


def test_audit_page_filters_and_rejects_a_bad_time(web: TestClient) -> None:
    login(web, "sci_a")
    web.post("/api/v1/auth/logout", headers=login(web, "sci_a"))
    login(web, "admin", ADMIN_PASSWORD)
    page = web.get("/admin/audit", params={"actor": "sci_a", "action": "login"}).text
    assert page.count("<td>sci_a</td><td>login</td>") == 2
    assert "<td>logout</td>" not in page
    future = web.get("/admin/audit", params={"since": "2999-01-01T00:00"}).text
    assert "No audit events match." in future
    bad = web.get("/admin/audit", params={"until": "yesterday"})
    assert bad.status_code == 400
    assert "&#39;until&#39; must be a date and time, got &#39;yesterday&#39;" in bad.text


def test_every_admin_page_renders(web: TestClient) -> None:
    login(web, "admin", ADMIN_PASSWORD)
    expected = {
        "/admin/projects": "Lung study",
        "/admin/projects/A": "sci_ab",
        "/admin/users": "sci_b",
        "/admin/nodes": "No DICOM nodes registered.",
        "/admin/system": "Stored objects",
        "/tokens": "You have no API tokens.",
        "/p/admin/studies": "Bravo^Bob",
    }
    for path, text in expected.items():
        response = web.get(path)
        assert response.status_code == 200, path
        assert text in response.text, path
        assert response.headers["cache-control"] == "no-store"
    assert HOSTILE_DESCRIPTION not in web.get("/p/admin/studies").text


def test_a_bad_page_parameter_is_an_html_error_and_the_api_keeps_json(web: TestClient) -> None:
    login(web, "sci_a")
    page = web.get("/p/A/studies", params={"offset": "-1"})
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "offset: Input should be greater than or equal to 0" in page.text
    api = web.get("/api/v1/studies", params={"offset": "-1"})
    assert api.status_code == 422
    assert api.json()["error"] == "invalid_input"


def test_audit_pages_keep_the_filters(web: TestClient) -> None:
    audit = web.app.state.platform.auth.audit  # type: ignore[attr-defined]
    for number in range(60):
        audit.record("dataset.export", actor="robot", target=f"dataset:{number}")
    login(web, "admin", ADMIN_PASSWORD)
    first = web.get("/admin/audit", params={"action": "dataset.export"}).text
    assert first.count("<td>dataset.export</td>") == 50
    assert "dataset:59" in first and "dataset:9<" not in first
    older = re.search(r'href="(/admin/audit\?[^"]+)" rel="next"', first)
    assert older is not None
    url = older.group(1).replace("&amp;", "&")
    assert "action=dataset.export" in url
    second = web.get(url).text
    assert second.count("<td>dataset.export</td>") == 10
    assert "dataset:0<" in second and 'rel="next"' not in second
