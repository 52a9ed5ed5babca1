"""REST endpoints behind the UI: one project's studies, project counts, system status, C-ECHO."""

from collections.abc import Iterator

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.api.conftest import Site
from tests.helpers import free_port


def test_studies_of_one_project(site: Site) -> None:
    everything = site.get("/api/v1/studies").json()
    assert everything["total"] == 2
    only_b = site.get("/api/v1/studies", params={"project": "B"}).json()
    assert [s["patient_id"] for s in only_b["items"]] == ["PB"]
    assert site.get("/api/v1/studies", params={"project": "admin"}).json()["total"] == 2
    study_a = site.study_a[0].StudyInstanceUID
    series = site.get(f"/api/v1/studies/{study_a}/series", params={"project": "A"}).json()
    assert series["total"] == 2
    missing = site.get(f"/api/v1/studies/{study_a}/series", params={"project": "B"})
    assert missing.status_code == 404


def test_a_project_outside_the_scope_is_not_found(site: Site) -> None:
    response = site.get("/api/v1/studies", "sci_a", params={"project": "B"})
    assert response.status_code == 404
    assert response.json()["detail"] == "project 'B' not found"
    assert site.get("/api/v1/projects/B/counts", "sci_a").status_code == 404


def test_project_counts(site: Site) -> None:
    counts = site.get("/api/v1/projects/A/counts", "sci_a").json()
    assert counts["patients"] == 1 and counts["studies"] == 1 and counts["series"] == 2
    assert counts["instances"] == len(site.study_a)
    assert counts["stored_bytes"] > 0
    whole = site.get("/api/v1/projects/admin/counts").json()
    assert whole["instances"] == len(site.study_a) + len(site.study_b)
    assert whole["stored_bytes"] > counts["stored_bytes"]


def test_system_status_for_administrators(site: Site) -> None:
    status = site.get("/api/v1/system").json()
    assert status["counts"]["studies"] == 2
    assert status["database"] in {"sqlite", "postgresql"}
    assert status["data_dir"]["total_bytes"] >= status["data_dir"]["free_bytes"] > 0
    assert status["packages"]["pydicom"][0].isdigit()
    assert site.get("/api/v1/system", "pi_a").status_code == 403


@pytest.fixture
def verification_scp() -> Iterator[int]:
    ae = AE(ae_title="ECHOSCP")
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    yield port
    server.shutdown()


def test_echo_a_node(site: Site, verification_scp: int) -> None:
    headers = site.headers("admin")
    for name, ae_title, port in (
        ("peer", "ECHOSCP", verification_scp),
        ("gone", "GONE", free_port()),
    ):
        created = site.client.post(
            "/api/v1/nodes",
            json={"name": name, "ae_title": ae_title, "host": "127.0.0.1", "port": port},
            headers=headers,
        )
        assert created.status_code == 201, created.text
    answered = site.client.post("/api/v1/nodes/peer/echo", headers=headers)
    assert answered.status_code == 200
    assert answered.json()["node"] == "peer" and answered.json()["milliseconds"] >= 0
    silent = site.client.post("/api/v1/nodes/gone/echo", headers=headers)
    assert silent.status_code == 502
    assert "gone" in silent.json()["detail"]
    assert site.client.post("/api/v1/nodes/nobody/echo", headers=headers).status_code == 404
    refused = site.client.post("/api/v1/nodes/peer/echo", headers=site.headers("pi_a"))
    assert refused.status_code == 403
