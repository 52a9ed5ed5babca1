"""The catalog's REST routes through the real application: answers, errors and project scope."""

from typing import Any

import pytest

from tests.api.conftest import Site, site  # noqa: F401  (the fixture)

API = "/api/v1"


@pytest.fixture
def cataloged(site: Site) -> Site:  # noqa: F811
    site.platform.catalog.reindex()
    return site


def _post(target: Site, path: str, body: Any, who: str = "sci_a") -> Any:
    return target.client.post(API + path, json=body, headers=target.headers(who))


def test_search_pages_with_cursor(cataloged: Site) -> None:
    body = {"project": "A", "query": {"sort": [{"field": "Modality"}]}, "limit": 1}
    first = _post(cataloged, "/search", body)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [item["modality"] for item in page["items"]] == ["CT"]
    assert page["items"][0]["patient_id"] == "PA"
    second = _post(cataloged, "/search", {**body, "cursor": page["next_cursor"]}).json()
    assert [item["modality"] for item in second["items"]] == ["MR"]
    assert second["next_cursor"] is None


def test_search_is_scoped_to_the_project(cataloged: Site) -> None:
    b_uid = cataloged.study_b[0].SeriesInstanceUID
    query = {"where": {"field": "SeriesInstanceUID", "op": "=", "value": b_uid}}
    assert _post(cataloged, "/search", {"project": "A", "query": query}).json()["items"] == []
    assert _post(cataloged, "/search", {"project": "B", "query": query}, "sci_b").json()["items"]
    hidden = _post(cataloged, "/search", {"project": "B", "query": query}, "sci_a")
    assert hidden.status_code == 404
    assert hidden.json() == {"error": "not_found", "detail": "project 'B' not found"}
    assert cataloged.client.post(API + "/search", json={"project": "A"}).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (
            {"project": "A", "query": {"where": {"field": "Nope", "op": "=", "value": 1}}},
            400,
            "unknown field 'Nope'",
        ),
        (
            {"project": "A", "query": {"where": {"field": "Modality", "op": "like", "value": "C"}}},
            400,
            "allowed: '='",
        ),
        (
            {
                "project": "A",
                "query": {"where": {"field": "SliceThickness", "op": "<", "value": "x"}},
            },
            400,
            "holds numbers",
        ),
        ({"project": "A", "cursor": "bm9wZQ"}, 400, "is not a cursor"),
        ({"project": "A", "limit": 0}, 422, "limit"),
    ],
)
def test_search_bad_input(cataloged: Site, body: Any, status: int, needle: str) -> None:
    answer = _post(cataloged, "/search", body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) >= {"error", "detail"}
    assert needle in answer.json()["detail"]


def test_malformed_json_body_says_where(cataloged: Site) -> None:
    answer = cataloged.client.post(
        API + "/search",
        content=b'{"project": "A",\n "query": {"where": }}',
        headers={**cataloged.headers("sci_a"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_input"
    assert (
        "invalid JSON" in answer.json()["detail"] and "line 2, column 21" in answer.json()["detail"]
    )


def test_facets(cataloged: Site) -> None:
    body = {
        "project": "A",
        "query": {"where": {"field": "PatientID", "op": "=", "value": "PA"}},
        "facets": [
            {"field": "Modality"},
            {"field": "SliceThickness", "type": "histogram", "width": 1},
            {"field": "StudyDate", "type": "date_histogram", "interval": "year"},
        ],
    }
    answer = _post(cataloged, "/facets", body)
    assert answer.status_code == 200, answer.text
    modality, thickness, dates = answer.json()["facets"]
    assert {b["value"]: b["count"] for b in modality["buckets"]} == {"CT": 1, "MR": 1}
    expected = {
        float(int(float(ds.SliceThickness))) for ds in cataloged.study_a if "SliceThickness" in ds
    }
    assert {b["low"] for b in thickness["buckets"]} == expected
    assert [b["period"] for b in dates["buckets"]] == [cataloged.study_a[0].StudyDate[:4]]
    bad = _post(
        cataloged, "/facets", {**body, "facets": [{"field": "Modality", "type": "histogram"}]}
    )
    assert bad.status_code == 400 and "numeric" in bad.json()["detail"]


def test_fields_and_values(cataloged: Site) -> None:
    headers = cataloged.headers("sci_a")
    fields = cataloged.client.get(API + "/fields", params={"project": "A"}, headers=headers)
    assert fields.status_code == 200
    by_name = {f["field"]: f for f in fields.json()}
    assert by_name["Modality"]["series"] == 2 and by_name["Modality"]["vr"] == "CS"
    values = cataloged.client.get(
        API + "/fields/Modality/values", params={"project": "A", "prefix": "c"}, headers=headers
    )
    assert values.json() == [{"value": "CT", "count": 1}]
    unknown = cataloged.client.get(
        API + "/fields/Nope/values", params={"project": "A"}, headers=headers
    )
    assert unknown.status_code == 400 and "unknown field 'Nope'" in unknown.json()["detail"]


def test_tags_through_rest(cataloged: Site) -> None:
    uid = cataloged.study_a[0].SeriesInstanceUID
    body = {"project": "A", "series_instance_uids": [uid], "add": ["excluded"]}
    added = _post(cataloged, "/tags", body)
    assert added.status_code == 200, added.text
    assert added.json() == {"tags": ["excluded"], "series": 1, "changed": 1}
    listed = cataloged.client.get(
        API + "/tags", params={"project": "A"}, headers=cataloged.headers("sci_a")
    )
    assert listed.json() == [{"tag": "excluded", "series": 1}]
    query = {"where": {"not": {"field": "tags", "op": "=", "value": "excluded"}}}
    found = _post(cataloged, "/search", {"project": "A", "query": query}).json()["items"]
    assert uid not in {item["series_instance_uid"] for item in found} and found
    b_uid = cataloged.study_b[0].SeriesInstanceUID
    foreign = _post(cataloged, "/tags", {**body, "series_instance_uids": [b_uid]})
    assert foreign.status_code == 404
    user = cataloged.platform.auth.users.get("sci_a")
    read_only = cataloged.platform.auth.tokens.issue(user, name="ro", can_write=False).secret
    denied = cataloged.client.post(
        API + "/tags", json=body, headers={"Authorization": f"Bearer {read_only}"}
    )
    assert denied.status_code == 403 and denied.json()["error"] == "forbidden"
