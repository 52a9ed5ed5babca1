"""send-dicom, query-pacs and retrieve-from-pacs through the engine, against Debian's Orthanc:
a cohort goes out, is found again and comes back into another project and a dataset."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from sqlalchemy import select

from kaapana.archive.nodes import Nodes
from kaapana.db.models import Instance, SeriesProject
from kaapana.errors import InvalidInput, NotFound
from kaapana.platform import Platform
from kaapana.testing import ct_series
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

    queried = _run(
        platform,
        site.project_pk,
        "query-pacs",
        params={"node": "orthanc", "patient_id": "RT*", "modality": "CT"},
    )
    assert queried.state == "succeeded", _errors(queried)
    studies = json.loads(_artifact(platform, queried.id, "studies.json"))
    study_uids = {ds.StudyInstanceUID for ds in originals.values()}
    assert {row["StudyInstanceUID"] for row in studies["studies"]} == study_uids
    assert {row["NumberOfStudyRelatedInstances"] for row in studies["studies"]} == {"3"}
    csv_text = _artifact(platform, queried.id, "studies.csv").decode()
    assert csv_text.startswith("StudyInstanceUID,PatientID,") and "RT1" in csv_text

    inbox = platform.archive.projects.create("inbox")
    missing = _run(
        platform,
        inbox.id,
        "retrieve-from-pacs",
        params={"node": "orthanc", "study_instance_uids": ["1.2.3.4"]},
    )
    assert missing.state == "failed" and "has no such studies" in _errors(missing)
    retrieved = _run(
        platform,
        inbox.id,
        "retrieve-from-pacs",
        params={"node": "orthanc", "patient_id": "RT*", "dataset": "from-pacs"},
    )
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


def test_an_unreachable_node_fails_the_tasks_naming_it(make_site: Callable[..., Site]) -> None:
    site = make_site(series=2)
    platform = site.platform
    Nodes(platform.engine).add("offline", "OFFLINE", "127.0.0.1", free_port())
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
