"""REST: workflows with their schemas, runs with DAG and task states, logs, artifacts, and the
project checks (write to start or change a run, read to see it, nothing of other projects)."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from distributed import LocalCluster
from fastapi.testclient import TestClient

from kaapana.api import create_app
from kaapana.auth.roles import RoleValues
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series
from tests.helpers import part10

PASSWORD = "a-good-password"


@dataclass
class Api:
    client: TestClient
    headers: dict[str, dict[str, str]]
    series: list[str]

    platform: Platform

    def call(self, method: str, path: str, who: str = "sci_a", **kwargs: Any) -> httpx.Response:
        return self.client.request(method, f"/api/v1{path}", headers=self.headers[who], **kwargs)


@pytest.fixture
def api(
    make_settings: Callable[..., Settings], database_url: str | None, dask_cluster: LocalCluster
) -> Iterator[Api]:
    settings = make_settings(
        database_url=database_url,
        dask_scheduler=dask_cluster.scheduler_address,
        workflow_entry_points=False,
        admin_password="admin-password-1",
    )
    app = create_app(settings)
    with TestClient(app) as client:
        platform: Platform = app.state.platform
        a = platform.archive.projects.create("A")
        b = platform.archive.projects.create("B")
        headers = {}
        for name, project, write in (
            ("sci_a", a, True),
            ("reader_a", a, False),
            ("sci_b", b, True),
        ):
            user = platform.auth.users.create(name, password=PASSWORD)
            platform.auth.users.set_role(name, project, RoleValues.scientist)
            issued = platform.auth.tokens.issue(user, name="t", can_write=write)
            headers[name] = {"Authorization": f"Bearer {issued.secret}"}
        target = platform.archive.target("A", "cohort")
        series = []
        for seed in range(2):
            datasets = ct_series(patient_id=f"API{seed}", rows=16, columns=16, slices=2, seed=seed)
            for ds in datasets:
                platform.archive.store_bytes(part10(ds), target)
            series.append(str(datasets[0].SeriesInstanceUID))
        yield Api(client, headers, series, platform)


def test_workflows_list_and_detail_with_schemas(api: Api) -> None:
    listed = api.call("GET", "/workflows").json()
    names = {w["name"] for w in listed["workflows"]}
    assert {"noop", "series-metadata"} <= names and listed["load_errors"] == []
    detail = api.call("GET", "/workflows/series-metadata").json()
    assert detail["parameters_schema"]["properties"]["indent"]["description"]
    assert detail["steps"][0]["mode"] == "per_series"
    assert api.call("GET", "/workflows/nope").status_code == 404
    assert api.call("POST", "/workflows/reload").status_code == 403


def test_a_run_over_rest(api: Api) -> None:
    body = {"workflow": "series-metadata", "project": "A", "dataset": "cohort"}
    created = api.call("POST", "/runs", json=body)
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["dag"] == {"series-metadata": []} and len(run["tasks"]) == 2
    task = run["tasks"][0]
    streamed = api.call("GET", f"/runs/{run['id']}/tasks/{task['id']}/log?follow=true")
    assert streamed.status_code == 200 and "wrote series.json" in streamed.text
    detail = api.call("GET", f"/runs/{run['id']}").json()
    assert detail["state"] in ("running", "succeeded")
    # Following the log ended with the task; the run ends moments later.
    api.platform.workflows.wait(run["id"], timeout=60)
    detail = api.call("GET", f"/runs/{run['id']}").json()
    assert detail["state"] == "succeeded" and detail["task_counts"] == {"succeeded": 2}
    artifacts = api.call("GET", f"/runs/{run['id']}/artifacts").json()
    name = next(a["name"] for a in artifacts if a["name"].endswith("series.json"))
    download = api.call("GET", f"/runs/{run['id']}/artifacts/{name}")
    assert download.status_code == 200 and download.json()["SeriesInstanceUID"] in api.series
    manifest = api.call("GET", f"/runs/{run['id']}/artifacts/manifest.json").json()
    assert manifest["run_id"] == run["id"]
    assert [r["id"] for r in api.call("GET", "/runs", who="reader_a").json()] == [run["id"]]
    assert api.call("GET", "/runs", who="sci_b").json() == []
    assert api.call("GET", f"/runs/{run['id']}", who="sci_b").status_code == 404
    assert api.call("POST", f"/runs/{run['id']}/rerun", who="reader_a").status_code == 403
    assert api.call("POST", f"/runs/{run['id']}/rerun", who="sci_b").status_code == 404
    rerun = api.call("POST", f"/runs/{run['id']}/rerun")
    assert rerun.status_code == 201 and rerun.json()["rerun_of"] == run["id"]
    api.platform.workflows.wait(rerun.json()["id"], timeout=60)
    diff = api.call("GET", f"/runs/diff?a={run['id']}&b={rerun.json()['id']}").json()
    assert diff["differences"] == []
    assert api.call("POST", f"/runs/{run['id']}/cancel").status_code == 409
    assert api.call("POST", f"/runs/{run['id']}/retry").status_code == 409


def test_bad_run_requests_are_clear_errors(api: Api) -> None:
    def create(who: str = "sci_a", **body: object) -> tuple[int, str]:
        response = api.call("POST", "/runs", who=who, json=body)
        return response.status_code, response.text

    base = {"workflow": "series-metadata", "project": "A"}
    status, text = create(**base, dataset="cohort", params={"indent": "wide"})
    assert status == 400 and "indent" in text and "wide" in text
    assert create(**base, dataset="missing")[0] == 404
    assert create(**base)[0] == 400
    status, text = create(**base, query={"Modality": "CT"})
    assert status == 400 and "unknown key 'Modality'" in text
    status, text = create(**base, query={"where": {"field": "Modality", "op": "=", "value": "MR"}})
    assert status == 400 and "matches no series" in text
    assert create(**base, dataset="cohort", who="reader_a")[0] == 403
    assert create(**base, dataset="cohort", who="sci_b")[0] == 404
    assert create(workflow="series-metadata", project="B", series=api.series, who="sci_b")[0] == 404
    assert api.call("GET", "/runs/999").status_code == 404
    assert api.call("GET", "/runs").json() == []


def test_a_run_storing_into_another_project_needs_access_there(api: Api) -> None:
    body = {"workflow": "de-identify", "project": "A", "dataset": "cohort"}
    unseen = api.call("POST", "/runs", json={**body, "params": {"target_project": "B"}})
    assert unseen.status_code == 404  # sci_a does not see B: as for any project it cannot see
    missing = api.call("POST", "/runs", json={**body, "params": {"target_project": "C"}})
    assert missing.status_code == 404
    assert api.call("GET", "/runs").json() == []
    created = api.call("POST", "/runs", json={**body, "params": {"target_project": "A"}})
    assert created.status_code == 201
    done = api.platform.workflows.wait(created.json()["id"], timeout=120)
    assert done.state == "succeeded", done
