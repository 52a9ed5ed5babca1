"""REST: /api/v1/projects/{project}/datasets and .../series/delete, status codes and errors."""

import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from kaapana.db.engine import session_factory
from kaapana.db.models import Series
from tests.api.conftest import Site

BASE = "/api/v1/projects/A"


def _post(cohort_site: Site, path: str, body: Any, who: str = "sci_a") -> Any:
    return cohort_site.client.post(path, json=body, headers=cohort_site.headers(who))


def _uids(cohort_site: Site, modality: str | None = None) -> list[str]:
    return list(
        {
            ds.SeriesInstanceUID: None
            for ds in cohort_site.study_a
            if modality is None or ds.Modality == modality
        }
    )


def test_dataset_lifecycle(cohort_site: Site) -> None:
    ct = _uids(cohort_site, "CT")
    created = _post(cohort_site, f"{BASE}/datasets", {"name": "lungs", "series": ct[:2]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["series"], body["modalities"]) == ("selection", 2, {"CT": 2})
    added = _post(cohort_site, f"{BASE}/datasets/lungs/series", {"series": ct})
    assert added.json()["changed"] == len(ct) - 2
    assert added.json()["dataset"]["series"] == len(ct)
    removed = _post(cohort_site, f"{BASE}/datasets/lungs/series/remove", {"series": ct[:1]})
    assert removed.json()["changed"] == 1
    page = cohort_site.get(f"{BASE}/datasets/lungs/series?limit=2&offset=1", who="sci_a").json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (
        len(ct) - 1,
        2,
        1,
        2,
    )
    patched = cohort_site.client.patch(
        f"{BASE}/datasets/lungs",
        json={"name": "Lungen ü", "description": "thorax"},
        headers=cohort_site.headers("sci_a"),
    )
    assert (patched.status_code, patched.json()["name"]) == (200, "Lungen ü")
    listed = cohort_site.get(f"{BASE}/datasets", who="sci_a").json()
    assert [(d["name"], d["description"]) for d in listed] == [("Lungen ü", "thorax")]
    assert cohort_site.get(f"{BASE}/datasets/Lungen ü", who="sci_a").json()["series"] == len(ct) - 1
    deleted = cohort_site.client.delete(
        f"{BASE}/datasets/Lungen ü", headers=cohort_site.headers("sci_a")
    )
    assert deleted.status_code == 204
    assert cohort_site.get(f"{BASE}/datasets/Lungen ü", who="sci_a").status_code == 404
    actions = {e.action for e in cohort_site.platform.auth.audit.query(actor="sci_a", limit=50)}
    assert {"dataset.create", "dataset.add", "dataset.remove", "dataset.update"} <= actions
    assert "dataset.delete" in actions


def test_manifest_downloads(cohort_site: Site) -> None:
    uids = _uids(cohort_site)
    assert (
        _post(cohort_site, f"{BASE}/datasets", {"name": "all of A", "series": uids}).status_code
        == 201
    )
    as_csv = cohort_site.get(f"{BASE}/datasets/all of A/manifest", who="sci_a")
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"] == (
        "attachment; filename=\"A-all_of_A.csv\"; filename*=UTF-8''A-all%20of%20A.csv"
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert sorted(r["SeriesInstanceUID"] for r in rows) == sorted(uids)
    as_json = cohort_site.get(f"{BASE}/datasets/all of A/manifest?format=json", who="sci_a")
    assert as_json.headers["content-type"] == "application/json"
    series = json.loads(as_json.text)["series"]
    assert sum(len(s["Instances"]) for s in series) == len(cohort_site.study_a)
    assert cohort_site.get(f"{BASE}/datasets/all of A/manifest", who="sci_b").status_code == 404
    wrong = cohort_site.get(f"{BASE}/datasets/all of A/manifest?format=xml", who="sci_a")
    assert wrong.status_code == 422 and wrong.json()["error"] == "invalid_input"


def test_permissions(cohort_site: Site) -> None:
    uids = _uids(cohort_site)
    assert (
        _post(cohort_site, f"{BASE}/datasets", {"name": "d", "series": uids[:1]}).status_code == 201
    )
    assert cohort_site.get(f"{BASE}/datasets", who="sci_b").status_code == 404
    assert cohort_site.get(f"{BASE}/datasets", who="anonymous").status_code == 401
    foreign = _post(cohort_site, f"{BASE}/datasets", {"name": "x", "series": uids[:1]}, who="sci_b")
    assert foreign.status_code == 404
    refused = _post(cohort_site, f"{BASE}/series/delete", {"series": uids[:1]}, who="sci_a")
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    with session_factory(cohort_site.platform.engine)() as session:
        assert session.scalar(select(func.count()).select_from(Series)) == len(uids)
    assert cohort_site.platform.datasets.get(
        cohort_site.platform.archive.projects.get("A"), "d"
    ).summary.series


def test_series_deletion_by_a_principal_investigator(cohort_site: Site) -> None:
    uids = _uids(cohort_site, "MR")
    answer = _post(cohort_site, f"{BASE}/series/delete", {"series": uids}, who="pi_a")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "series_unlinked": len(uids),
        "series_deleted": len(uids),
        "instances_deleted": sum(1 for ds in cohort_site.study_a if ds.Modality == "MR"),
    }
    again = _post(cohort_site, f"{BASE}/series/delete", {"series": uids}, who="pi_a")
    assert again.status_code == 400 and "not found in the project" in again.json()["detail"]
    assert cohort_site.platform.auth.audit.query(action="series.delete")[0].actor == "pi_a"


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (f"{BASE}/datasets", {"name": "a/b", "series": ["1.2"]}, 400, "invalid_input"),
        (f"{BASE}/datasets", {"name": "x" * 65, "series": ["1.2"]}, 422, "invalid_input"),
        (f"{BASE}/datasets", {"name": "e", "series": []}, 400, "invalid_input"),
        (f"{BASE}/datasets", {"name": "e"}, 400, "invalid_input"),
        (f"{BASE}/datasets", {"name": "q", "series": ["1.2"], "query": {}}, 422, "invalid_input"),
        (
            f"{BASE}/datasets",
            {"name": "l", "kind": "live", "query": {"a": 1}},
            400,
            "invalid_input",
        ),
        (f"{BASE}/datasets", {"name": "k", "kind": "bogus"}, 422, "invalid_input"),
        (f"{BASE}/datasets", {"name": "u", "series": ["x" * 65]}, 422, "invalid_input"),
        (f"{BASE}/datasets", {"name": "u", "series": ["1.2.3"]}, 400, "invalid_input"),
        (f"{BASE}/datasets", "not json", 422, "invalid_input"),
        ("/api/v1/projects/nope/datasets", {"name": "n", "series": ["1.2"]}, 404, "not_found"),
        (f"{BASE}/datasets/missing/series", {"series": ["1.2"]}, 404, "not_found"),
        (f"{BASE}/datasets", {"name": "n\x00", "series": ["1.2"]}, 400, "invalid_input"),
        (
            f"{BASE}/datasets",
            {"name": "d", "description": "\x00", "series": ["1.2"]},
            400,
            "invalid_input",
        ),
        (f"{BASE}/datasets", {"name": "d", "series": ["1.2\x00"]}, 400, "invalid_input"),
        ("/api/v1/projects/A%00/datasets", {"name": "n", "series": ["1.2"]}, 404, "not_found"),
        (f"{BASE}/series/delete", {"series": []}, 400, "invalid_input"),
        (f"{BASE}/series/delete", {"series": ["'; DROP TABLE series; --"]}, 400, "invalid_input"),
    ],
)
def test_bad_input_gets_a_clear_error(
    cohort_site: Site, path: str, body: Any, status: int, error: str
) -> None:
    answer = _post(cohort_site, path, body, who="pi_a")
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert answer.json()["detail"]
    assert cohort_site.platform.datasets.list(cohort_site.platform.archive.projects.get("A")) == []


def test_duplicates_and_unknown_names(cohort_site: Site) -> None:
    uids = _uids(cohort_site)
    assert (
        _post(cohort_site, f"{BASE}/datasets", {"name": "d", "series": uids[:1]}).status_code == 201
    )
    twice = _post(cohort_site, f"{BASE}/datasets", {"name": "d", "series": uids[:1]})
    assert (twice.status_code, twice.json()["error"]) == (409, "conflict")
    long_name = cohort_site.get(f"{BASE}/datasets/{'n' * 500}", who="sci_a")
    assert long_name.status_code == 422
    for hostile in ("a%00b", "%F0%9F%92%A9", "..%2F..%2Fetc", "x" * 64):
        assert (
            cohort_site.get(f"{BASE}/datasets/{hostile}/manifest", who="sci_a").status_code == 404
        )
    unknown = cohort_site.get(f"{BASE}/datasets/nope/series", who="sci_a")
    assert (unknown.status_code, unknown.json()["detail"]) == (
        404,
        "no dataset named 'nope' in project 'A'",
    )
    rename = cohort_site.client.patch(
        f"{BASE}/datasets/d", json={"name": " x"}, headers=cohort_site.headers("sci_a")
    )
    assert rename.status_code == 400 and "'name'" in rename.json()["detail"]
