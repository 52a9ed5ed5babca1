"""Runs on a real Dask cluster, on SQLite and PostgreSQL: fan-out, DAG, results, provenance."""

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlalchemy import select

from kaapana.catalog.thumbnails import thumbnail_key
from kaapana.db.models import Instance, Run, RunOutput, Series
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.workflows import ModeValues, Step, Workflow
from tests.workflows import operators
from tests.workflows.conftest import Site


def test_series_metadata_writes_a_json_per_series_with_a_manifest(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    engine = site.platform.workflows
    run = engine.start_run(
        project_pk=site.project_pk, workflow="series-metadata", dataset="cohort", created_by="me"
    )
    assert run.state == "queued" and len(run.tasks) == 3
    done = engine.wait(run.id, timeout=120)
    assert done.state == "succeeded", done
    assert {t.state for t in done.tasks} == {"succeeded"}
    work = site.platform.settings.resolved_work_dir / str(run.id)
    for uid in site.series:
        folder = work / "batch" / uid
        summary = json.loads((folder / "series-metadata" / "series.json").read_text())
        assert summary["SeriesInstanceUID"] == uid and len(summary["files"]) == 2
        inputs = sorted((folder / "get-input-data").iterdir())
        assert all(p.is_symlink() for p in inputs)
        assert dcmread(inputs[0]).SeriesInstanceUID == uid
    assert not (work / "attempts").exists() or not any((work / "attempts").iterdir())
    manifest = engine.manifest(run.id)
    assert manifest["workflow"] == "series-metadata" and manifest["state"] == "succeeded"
    assert manifest["definition_hash"] == engine.workflow("series-metadata").definition_hash
    with site.platform.archive._sessions() as session:  # the index's own sha256 per instance
        expected = dict(session.execute(select(Instance.sop_instance_uid, Instance.sha256)).all())
    listed = {
        i["sop_instance_uid"]: i["sha256"] for s in manifest["inputs"] for i in s["instances"]
    }
    assert listed == expected
    assert len(manifest["outputs"]["artifacts"]) == 3 and manifest["workers"]
    names = [a.name for a in engine.artifacts(run.id)]
    assert "manifest.json" in names
    view, stream = engine.open_artifact(run.id, names[0])
    with stream:
        assert len(stream.read()) == view.size


def test_rerun_reproduces_hashes_and_refuses_a_changed_definition(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=2)
    engine = site.platform.workflows
    first = engine.start_run(
        project_pk=site.project_pk, workflow="series-metadata", dataset="cohort"
    )
    assert engine.wait(first.id, timeout=120).state == "succeeded"
    again = engine.rerun(first.id, created_by="me")
    assert again.rerun_of == first.id and again.params == first.params
    assert engine.wait(again.id, timeout=120).state == "succeeded"
    a, b = engine.manifest(first.id), engine.manifest(again.id)
    hashes = sorted(x["sha256"] for x in a["outputs"]["artifacts"])
    assert hashes == sorted(x["sha256"] for x in b["outputs"]["artifacts"])
    assert engine.diff(first.id, again.id) == []
    changed = Workflow(
        name="series-metadata",
        version="1.0",
        steps=[Step(name="series-metadata", operator=operators.probe)],
    )
    engine.registry.add(changed)
    with pytest.raises(Conflict, match="changed since run"):
        engine.rerun(first.id)


def test_diff_names_different_parameters(make_site: Callable[..., Site]) -> None:
    site = make_site(series=1)
    engine = site.platform.workflows
    runs = [
        engine.start_run(
            project_pk=site.project_pk,
            workflow="series-metadata",
            dataset="cohort",
            params={"indent": indent},
        )
        for indent in (None, 2)
    ]
    for run in runs:
        assert engine.wait(run.id, timeout=120).state == "succeeded"
    fields = [d["field"] for d in engine.diff(runs[0].id, runs[1].id)]
    assert "parameters.indent" in fields
    assert any(f.startswith("outputs.artifacts[") for f in fields)


def test_bad_input_is_refused_before_anything_runs(make_site: Callable[..., Site]) -> None:
    site = make_site(series=1)
    engine = site.platform.workflows

    def start(**kwargs: object) -> None:
        engine.start_run(project_pk=site.project_pk, **kwargs)  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match=r"indent: .*got 'wide'"):
        start(workflow="series-metadata", dataset="cohort", params={"indent": "wide"})
    with pytest.raises(InvalidInput, match="Extra inputs"):
        start(workflow="series-metadata", dataset="cohort", params={"colour": 1})
    with pytest.raises(NotFound, match="dataset 'nope' not found"):
        start(workflow="series-metadata", dataset="nope")
    site.platform.archive.projects.ensure_dataset(
        site.platform.archive.projects.get("admin"), "empty"
    )
    with pytest.raises(InvalidInput, match="dataset 'empty' holds no series"):
        start(workflow="series-metadata", dataset="empty")
    with pytest.raises(NotFound, match=r"series not found in this project: 1\.2\.3"):
        start(workflow="series-metadata", series=["1.2.3"])
    with pytest.raises(InvalidInput, match="unknown key 'Modality'"):
        start(workflow="series-metadata", query={"Modality": "CT"})
    with pytest.raises(InvalidInput, match="matches no series"):
        start(workflow="series-metadata", query={"where": {"field": "Modality", "value": "MR"}})
    with pytest.raises(InvalidInput, match="exactly one of"):
        start(workflow="series-metadata", dataset="cohort", series=site.series)
    with pytest.raises(NotFound, match="workflow 'nope' not found"):
        start(workflow="nope", dataset="cohort")
    with site.platform.archive._sessions() as session:
        assert session.scalars(select(Run)).all() == []


def test_a_failing_series_fails_its_task_and_downstream_while_others_finish_then_retry(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    engine = site.platform.workflows
    params = {"marker_dir": str(site.markers)}
    flag = site.markers / f"fail-{site.series[1]}"
    flag.touch()
    run = engine.start_run(
        project_pk=site.project_pk, workflow="probe", dataset="cohort", params=params
    )
    done = engine.wait(run.id, timeout=120)
    assert done.state == "failed"
    states = {(t.step, t.series_instance_uid): t.state for t in done.tasks}
    assert states[("probe", site.series[0])] == "succeeded"
    assert states[("probe", site.series[2])] == "succeeded"
    assert states[("probe", site.series[1])] == "failed"
    assert states[("gather", None)] == "upstream_failed"
    failed = next(t for t in done.tasks if t.state == "failed")
    assert failed.attempts == 2  # retries=1
    log = engine.log_path(run.id, failed.id).read_text()
    assert "RuntimeError: probe refuses" in log and "Traceback" in log
    assert "says hello" in log and "probe logging for" in log
    assert len(site.executions("probe")) == 4

    with pytest.raises(Conflict, match="is failed already"):
        engine.cancel(run.id)
    flag.unlink()  # the series is fine now: only its task and the downstream one run again
    retried = engine.retry(run.id)
    assert retried.state == "queued"
    done = engine.wait(run.id, timeout=120)
    assert done.state == "succeeded", done
    probes = site.executions("probe")
    assert len([p for p in probes if p.startswith(f"probe.{site.series[0]}.")]) == 1
    assert len([p for p in probes if p.startswith(f"probe.{site.series[1]}.")]) == 3
    assert len(site.executions("gather")) == 1


def test_a_partial_step_summarises_the_series_that_succeeded_and_again_after_a_retry(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    engine = site.platform.workflows
    engine.registry.add(
        Workflow(
            name="probe-partial",
            version="1",
            parameters=operators.ProbeParameters,
            steps=[
                Step(name="probe", operator=operators.probe),
                Step(
                    name="gather",
                    operator=operators.gather,
                    mode=ModeValues.per_run,
                    upstream=("probe",),
                    partial=True,
                ),
            ],
        )
    )
    flag = site.markers / f"fail-{site.series[1]}"
    flag.touch()
    run = engine.start_run(
        project_pk=site.project_pk,
        workflow="probe-partial",
        dataset="cohort",
        params={"marker_dir": str(site.markers)},
    )
    done = engine.wait(run.id, timeout=120)
    assert done.state == "failed"  # a series failed, though the summary is there
    states = {(t.step, t.series_instance_uid): t.state for t in done.tasks}
    assert states[("probe", site.series[1])] == "failed"
    assert states[("gather", None)] == "succeeded"
    gathered = engine.log_path(run.id, next(t.id for t in done.tasks if t.step == "gather"))
    counted = [uid for uid in site.series if f"series {uid} counted" in gathered.read_text()]
    assert counted == [site.series[0], site.series[2]]

    flag.unlink()
    engine.retry(run.id)
    done = engine.wait(run.id, timeout=120)
    assert done.state == "succeeded", done
    assert len(site.executions("gather")) == 2  # the summary now covers every series
    gathered = engine.log_path(run.id, next(t.id for t in done.tasks if t.step == "gather"))
    assert all(f"series {uid} counted" in gathered.read_text() for uid in site.series)
    with pytest.raises(InvalidInput, match="'partial' of step 'gather' needs a per_run step"):
        Step(name="gather", operator=operators.gather, partial=True)


def test_store_dicom_enters_the_archive_with_provenance(make_site: Callable[..., Site]) -> None:
    site = make_site(series=1)
    engine = site.platform.workflows
    engine.registry.add(
        Workflow(name="segment", version="1", steps=[Step(name="seg", operator=operators.segment)])
    )
    run = engine.start_run(project_pk=site.project_pk, workflow="segment", dataset="cohort")
    assert engine.wait(run.id, timeout=120).state == "succeeded"
    with site.platform.archive._sessions() as session:
        output = session.scalars(select(RunOutput)).one()
        assert output.run_pk == run.id and output.source_series_instance_uid == site.series[0]
        stored = session.scalars(
            select(Series.modality)
            .join(Instance, Instance.series_pk == Series.id)
            .where(Instance.sop_instance_uid == output.sop_instance_uid)
        ).one()
        assert stored == "SEG"
    manifest = engine.manifest(run.id)
    assert manifest["outputs"]["dicom"][0]["sop_instance_uid"] == output.sop_instance_uid


def test_a_tasks_context_on_disk_is_the_owners_and_service_tasks_get_no_secrets(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=1, admin_password="not-for-tasks-0000")
    engine = site.platform.workflows
    engine.registry.add(
        Workflow(
            name="describe-service",
            version="1",
            service=True,
            steps=[Step(name="describe", operator=operators.describe_own_attempt)],
        )
    )
    run = engine.start_run(
        project_pk=site.project_pk, workflow="describe-service", dataset="cohort"
    )
    done = engine.wait(run.id, timeout=120)
    assert done.state == "succeeded", done
    log = engine.log_path(run.id, done.tasks[0].id).read_text()
    assert "attempt file mode 600" in log
    assert "admin password given: False" in log
    assert "database url given: True" in log  # what a service task needs stays


def test_service_tasks_find_the_archive_of_a_relative_data_dir(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    """As `make run` has it (`./kaapana-data`): the task runs in its attempt folder, where the
    same relative path names another, empty archive."""
    relative = Path(os.path.relpath(tmp_path / "relative-data"))
    site = make_site(series=1, data_dir=relative)
    engine = site.platform.workflows
    run = engine.start_run(project_pk=site.project_pk, workflow="series-media", dataset="cohort")
    done = engine.wait(run.id, timeout=120)
    assert done.state == "succeeded", engine.log_path(run.id, done.tasks[0].id).read_text()
    assert site.platform.results.exists(thumbnail_key(site.series[0]))  # in the real archive
