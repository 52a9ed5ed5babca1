"""Gallery, dashboard and datasets pages through the real app: access, scoping, escaping."""

import json
import re
from urllib.parse import quote

from fastapi.testclient import TestClient

from tests.web.conftest import HOSTILE_DESCRIPTION, login

HOSTILE_DATASET = "<img src=x onerror=alert(3)> cohort"


def client_data(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="kp-data">(.*?)</script>', html, re.S)
    assert found is not None
    data: dict[str, object] = json.loads(found.group(1))
    return data


def series_of(web: TestClient, project: str, csrf: dict[str, str]) -> list[str]:
    answer = web.post("/api/v1/search", json={"project": project}, headers=csrf)
    assert answer.status_code == 200, answer.text
    return [hit["series_instance_uid"] for hit in answer.json()["items"]]


def test_the_catalog_pages_render_for_members_with_navigation(web: TestClient) -> None:
    login(web, "sci_a")
    for path, heading in (
        ("gallery", "Gallery of A"),
        ("dashboard", "Dashboard of A"),
        ("datasets", "Datasets of A"),
    ):
        response = web.get(f"/p/A/{path}")
        assert response.status_code == 200, response.text
        assert f"<h1>{heading}</h1>" in response.text
        assert f'<a href="/p/A/{path}" aria-current="page">' in response.text
        for other in ("gallery", "dashboard", "datasets"):
            assert f'href="/p/A/{other}"' in response.text


def test_foreign_projects_and_unknown_datasets_are_not_found(web: TestClient) -> None:
    login(web, "sci_a")
    for path in ("/p/B/gallery", "/p/B/dashboard", "/p/B/datasets", "/p/B/datasets/x"):
        response = web.get(path)
        assert response.status_code == 404, path
        assert "project &#39;B&#39; not found" in response.text
    missing = web.get("/p/A/datasets/nothing-here")
    assert missing.status_code == 404
    assert "nothing-here" in missing.text


def test_only_principal_investigators_are_offered_deletion(web: TestClient) -> None:
    login(web, "sci_ab")  # scientist in A, principal investigator in B
    in_a = web.get("/p/A/gallery").text
    in_b = web.get("/p/B/gallery").text
    assert client_data(in_a)["canDelete"] is False and client_data(in_a)["canWrite"] is True
    assert client_data(in_b)["canDelete"] is True
    assert 'id="series-delete"' not in in_a and 'id="series-delete"' in in_b


def test_datasets_list_and_detail_escape_names_and_dicom_strings(web: TestClient) -> None:
    csrf = login(web, "sci_a")
    uids = series_of(web, "A", csrf)
    created = web.post(
        "/api/v1/projects/A/datasets",
        json={"name": HOSTILE_DATASET, "description": "<i>x</i>", "series": uids},
        headers=csrf,
    )
    assert created.status_code == 201, created.text
    listing = web.get("/p/A/datasets").text
    assert HOSTILE_DATASET not in listing
    assert "&lt;img src=x onerror=alert(3)&gt; cohort" in listing
    assert re.search(r'class="series-count">2<', listing)
    link = "/p/A/datasets/" + quote(HOSTILE_DATASET, safe="")
    assert f'href="{link}"' in listing
    detail = web.get(link)
    assert detail.status_code == 200, detail.text
    for hostile in (HOSTILE_DATASET, HOSTILE_DESCRIPTION, "<i>x</i>"):
        assert hostile not in detail.text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in detail.text
    assert detail.text.count('class="series-card"') == 2
    for uid in uids:
        assert f'src="/api/v1/series/{uid}/thumbnail"' in detail.text
    assert "manifest?format=csv" in detail.text
    assert client_data(detail.text) == {"project": "A", "dataset": HOSTILE_DATASET}


def test_a_foreign_projects_dataset_stays_invisible(web: TestClient) -> None:
    csrf = login(web, "sci_b")
    answer = web.post(
        "/api/v1/projects/B/datasets",
        json={"name": "b-only", "series": series_of(web, "B", csrf)},
        headers=csrf,
    )
    assert answer.status_code == 201, answer.text
    web.post("/api/v1/auth/logout", headers=csrf)
    login(web, "sci_a")
    assert web.get("/p/B/datasets/b-only").status_code == 404
    assert "b-only" not in web.get("/p/A/datasets").text
