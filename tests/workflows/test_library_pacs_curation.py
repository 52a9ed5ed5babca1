"""The PACS and curation workflows through the engine (one module: one Dask cluster to warm).

send-dicom, query-pacs and retrieve-from-pacs against Debian's Orthanc: a cohort goes out, is
found again and comes back into another project and a dataset. train-test-split, tag-dataset
and delete-series: the changes are made by platform actions on the scheduler side; deletion only
for runs of a principal investigator.
"""

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydicom import dcmread
from sqlalchemy import select

from kaapana.api import create_app
from kaapana.archive.nodes import Nodes
from kaapana.auth.roles import RoleValues
from kaapana.config import Settings
from kaapana.db.models import Instance, Series, SeriesProject, SeriesTag
from kaapana.dicomnet.qr_scu import find_studies
from kaapana.errors import InvalidInput, NotFound
from kaapana.operators.pacs import StudyFilters, study_identifier
from kaapana.platform import Platform
from kaapana.testing import ct_series, mr_series
from kaapana.workflows.context import NodeAddress
from kaapana.workflows.views import RunDetailView
from tests.helpers import free_port
from tests.orthanc import Orthanc, running_orthanc
from tests.workflows.conftest import Site
from tests.workflows.test_library_segment import store


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    # Our AE is a known modality there, as a PACS would list it; C-GET needs no address.
    settings = {"DicomModalities": {"kaapana": ["KAAPANA", "127.0.0.1", 104]}}
    workdir = tmp_path / "orthanc"
    workdir.mkdir()
    with running_orthanc(workdir, settings) as running:
        yield running


def _artifact(platform: Platform, run_id: int, suffix: str) -> Any:
    names = [a.name for a in platform.workflows.artifacts(run_id) if a.name.endswith(suffix)]
    assert names, f"no artifact ending in {suffix} in run {run_id}"
    _, stream = platform.workflows.open_artifact(run_id, names[0])
    with stream:
        return stream.read()


def _run(platform: Platform, project_pk: int, workflow: str, **kwargs: Any) -> RunDetailView:
    run = platform.workflows.start_run(project_pk=project_pk, workflow=workflow, **kwargs)
    return platform.workflows.wait(run.id, timeout=120)


def _errors(run: RunDetailView) -> str:
    return " | ".join(task.error for task in run.tasks if task.error)


@pytest.mark.interop
@pytest.mark.slow
@pytest.mark.parametrize("database_url", [None], ids=["sqlite"])
def test_a_cohort_goes_to_orthanc_is_found_and_comes_back_into_a_dataset(
    make_site: Callable[..., Site], orthanc: Orthanc
) -> None:
    site = make_site(series=0)
    platform = site.platform
    originals = {}
    for seed in range(2):
        series = ct_series(patient_id=f"RT{seed}", rows=16, columns=16, slices=3, seed=seed)
        store(platform, series, dataset="cohort")
        originals.update({ds.SOPInstanceUID: ds for ds in series})
    Nodes(platform.engine).add("orthanc", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)

    sent = _run(
        platform, site.project_pk, "send-dicom", dataset="cohort", params={"node": "orthanc"}
    )
    assert sent.state == "succeeded", _errors(sent)
    assert sorted(
        orthanc.sop_instance_uid(i) for i in orthanc.api.get("/instances").json()
    ) == sorted(originals)
    report = json.loads(_artifact(platform, sent.id, "report.json"))
    assert report["node"] == "orthanc" and report["stored"] == 3 and report["failed"] == 0
    assert {item["status"] for item in report["instances"]} == {"stored"}

    inbox = platform.archive.projects.create("inbox")
    engine = platform.workflows
    started = [  # independent runs, started together
        engine.start_run(project_pk=project_pk, workflow=workflow, params=params)
        for project_pk, workflow, params in (
            (
                site.project_pk,
                "query-pacs",
                {"node": "orthanc", "patient_id": "RT*", "modality": "CT"},
            ),
            (
                inbox.id,
                "retrieve-from-pacs",
                {"node": "orthanc", "study_instance_uids": ["1.2.3.4"]},
            ),
            (
                inbox.id,
                "retrieve-from-pacs",
                {"node": "orthanc", "patient_id": "RT*", "dataset": "from-pacs"},
            ),
        )
    ]
    queried, missing, retrieved = (engine.wait(run.id, timeout=120) for run in started)
    assert queried.state == "succeeded", _errors(queried)
    studies = json.loads(_artifact(platform, queried.id, "studies.json"))
    study_uids = {ds.StudyInstanceUID for ds in originals.values()}
    assert {row["StudyInstanceUID"] for row in studies["studies"]} == study_uids
    assert {row["NumberOfStudyRelatedInstances"] for row in studies["studies"]} == {"3"}
    csv_text = _artifact(platform, queried.id, "studies.csv").decode()
    assert csv_text.startswith("StudyInstanceUID,PatientID,") and "RT1" in csv_text
    node = NodeAddress("orthanc", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)
    first = find_studies(
        node,
        study_identifier(StudyFilters(patient_id="RT*")),
        calling_ae_title=platform.settings.ae_title,
        limit=1,
    )
    assert len(first.studies) == 1 and first.truncated

    assert missing.state == "failed" and "has no such studies" in _errors(missing)
    assert retrieved.state == "succeeded", _errors(retrieved)
    members = {m.series_instance_uid for m in platform.datasets.members(inbox, "from-pacs").items}
    assert members == {ds.SeriesInstanceUID for ds in originals.values()}
    with platform.archive._sessions() as session:
        keys = session.execute(
            select(Instance.sop_instance_uid, Instance.storage_key)
            .join(SeriesProject, SeriesProject.series_pk == Instance.series_pk)
            .where(SeriesProject.project_pk == inbox.id)
        ).all()
    assert sorted(uid for uid, _ in keys) == sorted(originals)
    for uid, key in keys:
        with platform.store.open(key) as stream:
            back = dcmread(stream)
        np.testing.assert_array_equal(back.pixel_array, originals[uid].pixel_array)
        assert back.PatientID == originals[uid].PatientID
    outcome = json.loads(_artifact(platform, retrieved.id, "retrieved.json"))
    assert sorted(s["completed"] for s in outcome["studies"]) == [3, 3]


def test_an_unknown_node_is_refused_when_the_run_is_created(make_site: Callable[..., Site]) -> None:
    site = make_site(series=1)
    engine = site.platform.workflows
    Nodes(site.platform.engine).add("pacs", "PACS", "127.0.0.1", 104)
    for workflow, selection in (
        ("send-dicom", {"dataset": "cohort"}),
        ("query-pacs", {}),
        ("retrieve-from-pacs", {}),
    ):
        with pytest.raises(NotFound, match=r"parameter 'node'.*'nowhere'.*registered: pacs"):
            engine.start_run(
                project_pk=site.project_pk,
                workflow=workflow,
                params={"node": "nowhere", "patient_id": "X"}
                if workflow != "send-dicom"
                else {"node": "nowhere"},
                **selection,
            )
    with pytest.raises(InvalidInput, match="give study_instance_uids or at least one filter"):
        engine.start_run(
            project_pk=site.project_pk, workflow="retrieve-from-pacs", params={"node": "pacs"}
        )
    assert engine.list_runs() == []


@pytest.mark.parametrize("database_url", [None], ids=["sqlite"])
def test_an_unreachable_or_removed_node_fails_the_tasks_naming_it(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=1)
    platform = site.platform
    nodes = Nodes(platform.engine)
    nodes.add("offline", "OFFLINE", "127.0.0.1", free_port())
    nodes.add("retired", "RETIRED", "127.0.0.1", free_port())
    recorded = platform.workflows.start_run(
        project_pk=site.project_pk,
        workflow="query-pacs",
        params={"node": "retired"},
        start=False,
    )
    nodes.remove("retired")  # after the run was created, before its task is submitted
    sent = platform.workflows.start_run(
        project_pk=site.project_pk,
        workflow="send-dicom",
        dataset="cohort",
        params={"node": "offline"},
    )
    queried = _run(platform, site.project_pk, "query-pacs", params={"node": "offline"})
    sent = platform.workflows.wait(sent.id, timeout=120)
    assert sent.state == "failed" and queried.state == "failed"
    for task in [*sent.tasks, *queried.tasks]:
        assert task.state == "failed"
        assert "association with offline (OFFLINE@127.0.0.1:" in task.error
        assert "unreachable" in task.error
    (gone,) = platform.workflows.wait(recorded.id, timeout=120).tasks
    assert gone.state == "failed" and "DICOM node 'retired' is not registered" in gone.error


def _series_tags(platform: Platform, project_pk: int) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    with platform.archive._sessions() as session:
        for uid, tag in session.execute(
            select(Series.series_instance_uid, SeriesTag.tag)
            .join(SeriesTag, SeriesTag.series_pk == Series.id)
            .where(SeriesTag.project_pk == project_pk)
        ):
            found[uid].add(tag)
    return found


@pytest.mark.parametrize("database_url", [None], ids=["sqlite"])
def test_train_test_split_tags_whole_patients_stratified_by_their_tags(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    platform = site.platform
    patient_of: dict[str, str] = {}
    diagnosis_of: dict[str, str] = {}
    for number in range(8):
        make = ct_series if number < 4 else mr_series
        for repeat in range(2 if number % 3 == 0 else 1):  # some patients have two studies
            series = make(
                patient_id=f"SPLIT{number:02d}",
                rows=16,
                columns=16,
                slices=2,
                seed=number * 10 + repeat,
            )
            uid = store(platform, series, dataset="cohort")
            patient_of[uid] = series[0].PatientID
            diagnosis_of[uid] = "positive" if number % 2 else "negative"
    catalog = platform.catalog
    for diagnosis in ("positive", "negative"):
        uids = [uid for uid, found in diagnosis_of.items() if found == diagnosis]
        catalog.tag(
            project_pk=site.project_pk, series_instance_uids=uids, add=[f"diagnosis:{diagnosis}"]
        )
    stale = next(iter(patient_of))
    catalog.tag(project_pk=site.project_pk, series_instance_uids=[stale], add=["split:test"])
    params = {
        "stratify_by": "tag:diagnosis",
        "test_fraction": 0.25,
        "validation_fraction": 0.25,
        "seed": 5,
    }
    run = _run(site.platform, site.project_pk, "train-test-split", dataset="cohort", params=params)
    assert run.state == "succeeded", [t.error for t in run.tasks]

    tags = {
        uid: {tag for tag in found if tag.startswith("split:")}
        for uid, found in _series_tags(platform, site.project_pk).items()
    }
    assert set(tags) == set(patient_of)
    assert all(len(found) == 1 for found in tags.values())  # the stale tag was replaced
    part_of_patient: dict[str, set[str]] = defaultdict(set)
    for uid, found in tags.items():
        part_of_patient[patient_of[uid]] |= found
    assert all(len(parts) == 1 for parts in part_of_patient.values())
    patients = defaultdict(set)
    for uid, found in tags.items():
        patients[diagnosis_of[uid], next(iter(found))].add(patient_of[uid])
    assert {key: len(value) for key, value in patients.items()} == {
        (diagnosis, f"split:{part}"): count
        for diagnosis in ("positive", "negative")
        for part, count in (("test", 1), ("validation", 1), ("train", 2))
    }
    names = [a.name for a in platform.workflows.artifacts(run.id)]
    table_name = next(name for name in names if name.endswith("split.csv"))
    _, stream = platform.workflows.open_artifact(run.id, table_name)
    with stream:
        rows = list(csv.DictReader(io.StringIO(stream.read().decode())))
    assert {row["SeriesInstanceUID"]: "split:" + row["part"] for row in rows} == {
        uid: next(iter(found)) for uid, found in tags.items()
    }


@pytest.mark.parametrize("database_url", [None], ids=["sqlite"])  # tagging runs on both elsewhere
def test_tag_dataset_adds_and_removes_tags_on_every_input_series(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=2)
    catalog = site.platform.catalog
    catalog.tag(project_pk=site.project_pk, series_instance_uids=site.series[:1], add=["draft"])
    run = _run(
        site.platform,
        site.project_pk,
        "tag-dataset",
        dataset="cohort",
        params={"add": ["reviewed", "batch 1"], "remove": ["draft"]},
    )
    assert run.state == "succeeded"
    tags = _series_tags(site.platform, site.project_pk)
    assert tags == {uid: {"reviewed", "batch 1"} for uid in site.series}
    with pytest.raises(InvalidInput, match="add"):
        site.platform.workflows.start_run(
            project_pk=site.project_pk,
            workflow="tag-dataset",
            dataset="cohort",
            params={"add": ["a*"]},
        )


def _held(platform: Platform, project_pk: int) -> set[str]:
    with platform.archive._sessions() as session:
        return set(
            session.scalars(
                select(Series.series_instance_uid)
                .join(SeriesProject, SeriesProject.series_pk == Series.id)
                .where(SeriesProject.project_pk == project_pk)
            )
        )


def test_delete_series_runs_only_for_a_principal_investigator_and_is_audited(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=2)
    platform = site.platform
    project = platform.archive.projects.get("admin")
    users = platform.auth.users
    for name, role in (("pi", RoleValues.principal_investigator), ("sci", RoleValues.scientist)):
        users.create(name, password=None)
        users.set_role(name, project, role)

    refused = _run(platform, site.project_pk, "delete-series", dataset="cohort", created_by="sci")
    assert refused.state == "failed"
    assert "created by 'sci', who is neither a principal investigator of project 'admin'" in (
        refused.tasks[0].error
    )
    assert _held(platform, site.project_pk) == set(site.series)

    deleted = _run(
        platform, site.project_pk, "delete-series", series=site.series[:1], created_by="pi"
    )
    assert deleted.state == "succeeded", deleted.tasks[0].error
    assert _held(platform, site.project_pk) == set(site.series[1:])
    (record,) = platform.auth.audit.query(action="series.delete")
    assert record.actor == "pi" and record.project == "admin"
    assert record.detail["run"] == deleted.id and record.detail["series"] == site.series[:1]
    assert any(a.name.endswith("deleted.json") for a in platform.workflows.artifacts(deleted.id))

    with pytest.raises(InvalidInput, match="needs manage access"):
        platform.workflows.triggers.add(
            project_pk=site.project_pk, name="purge", workflow="delete-series"
        )


def test_over_rest_a_scientist_may_not_start_delete_series(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(workflow_entry_points=False))
    with TestClient(app) as client:
        platform: Platform = app.state.platform
        project = platform.archive.projects.create("study-x")
        headers = {}
        for name, role in (
            ("pi_x", RoleValues.principal_investigator),
            ("sci_x", RoleValues.scientist),
        ):
            user = platform.auth.users.create(name, password=None)
            platform.auth.users.set_role(name, project, role)
            token = platform.auth.tokens.issue(user, name="t", can_write=True)
            headers[name] = {"Authorization": f"Bearer {token.secret}"}
        body = {"workflow": "delete-series", "project": "study-x", "series": ["1.2.3"]}
        answer = client.post("/api/v1/runs", json=body, headers=headers["sci_x"])
        assert answer.status_code == 403
        assert "manage access to project of workflow 'delete-series' denied" in answer.text
        answer = client.post("/api/v1/runs", json=body, headers=headers["pi_x"])
        assert answer.status_code == 404 and "1.2.3" in answer.text  # past the role check
