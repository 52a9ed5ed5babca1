"""de-identify through the engine: objects stored into a target project, a report, the key."""

import json
import stat
from collections.abc import Callable

import pytest
from pydicom import dcmread
from sqlalchemy import select

from kaapana.db.models import Instance, Project, RunOutput, Series, SeriesProject
from kaapana.errors import Forbidden, InvalidInput, NotFound
from kaapana.testing import ct_series
from kaapana.workflows import Step, Workflow
from kaapana.workflows.secrets import project_key
from tests.workflows import operators
from tests.workflows.conftest import Site
from tests.workflows.test_library_segment import store


def test_deidentify_stores_pseudonymised_objects_into_the_target_project(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    platform = site.platform
    platform.archive.projects.create("research")
    original = ct_series(
        patient_id="PID-9913", patient_name="Holmes^Sherlock", rows=16, columns=16, slices=3
    )
    uid = store(platform, original)
    run = platform.workflows.start_run(
        project_pk=site.project_pk,
        workflow="de-identify",
        series=[uid],
        params={"target_project": "research"},
    )
    done = platform.workflows.wait(run.id, timeout=180)
    assert done.state == "succeeded", done
    with platform.archive._sessions() as session:
        stored = session.execute(
            select(Instance.storage_key, Project.name)
            .join(RunOutput, RunOutput.sop_instance_uid == Instance.sop_instance_uid)
            .join(SeriesProject, SeriesProject.series_pk == Instance.series_pk)
            .join(Project, Project.id == SeriesProject.project_pk)
            .where(RunOutput.run_pk == run.id)
        ).all()
        series_uids = set(session.scalars(select(Series.series_instance_uid)))
    assert len(stored) == 3 and {name for _, name in stored} == {"research"}
    for key, _ in stored:
        with platform.store.open(key) as stream:
            ds = dcmread(stream)
        assert ds.PatientID.startswith("KP-") and ds.PatientID != "PID-9913"
        assert str(ds.PatientName) == ds.PatientID and ds.PatientIdentityRemoved == "YES"
        assert ds.SeriesInstanceUID != uid
    assert len(series_uids) == 2  # the original stays where it was
    names = [a.name for a in platform.workflows.artifacts(run.id)]
    report_name = next(name for name in names if name.endswith("report.json"))
    _, stream = platform.workflows.open_artifact(run.id, report_name)
    with stream:
        report = json.load(stream)
    assert len(report["objects"]) == 3 and "PID-9913" not in json.dumps(report)

    secrets = platform.settings.data_dir / "secrets"
    assert stat.S_IMODE((secrets / "deidentify.key").stat().st_mode) == 0o600
    assert project_key(secrets, "research") != project_key(secrets, "admin")
    assert project_key(secrets, "research") == project_key(secrets, "research")


def test_deidentify_checks_the_target_project_when_the_run_is_created(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=1)
    engine = site.platform.workflows
    site.platform.archive.projects.create("research")
    with pytest.raises(NotFound, match="nowhere"):
        engine.start_run(
            project_pk=site.project_pk,
            workflow="de-identify",
            series=site.series,
            params={"target_project": "nowhere"},
        )

    def refuse(pk: int, name: str) -> None:
        raise Forbidden(f"no write access to project {name!r}")

    with pytest.raises(Forbidden, match="research"):
        engine.start_run(
            project_pk=site.project_pk,
            workflow="de-identify",
            series=site.series,
            params={"target_project": "research"},
            authorize=refuse,
        )
    with pytest.raises(InvalidInput, match="max_date_shift_days"):
        engine.start_run(
            project_pk=site.project_pk,
            workflow="de-identify",
            series=site.series,
            params={"max_date_shift_days": -1},
        )
    assert engine.list_runs() == []
    recorded = engine.start_run(
        project_pk=site.project_pk,
        workflow="de-identify",
        series=site.series,
        params={"target_project": "research"},
        start=False,
    )
    with pytest.raises(Forbidden, match="research"):
        engine.rerun(recorded.id, authorize=refuse, start=False)
    assert [run.id for run in engine.list_runs()] == [recorded.id]


def test_a_task_cannot_store_into_a_project_its_workflow_does_not_name(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=1)
    platform = site.platform
    platform.archive.projects.create("research")
    platform.workflows.registry.add(
        Workflow(
            name="sneaky",
            version="1",
            steps=[Step(name="segment", operator=operators.segment_into_research)],
        )
    )
    run = platform.workflows.start_run(
        project_pk=site.project_pk, workflow="sneaky", series=site.series
    )
    done = platform.workflows.wait(run.id, timeout=120)
    assert done.state == "failed" and "['research']" in done.tasks[0].error
    with platform.archive._sessions() as session:
        assert session.scalars(select(Series.modality)).all() == ["CT"]
