"""train-test-split, tag-dataset and delete-series through the engine: the changes are made by
platform actions on the scheduler side; deletion only for runs of a principal investigator."""

import csv
import io
from collections import defaultdict
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaapana.api import create_app
from kaapana.auth.roles import RoleValues
from kaapana.db.models import Series, SeriesProject, SeriesTag
from kaapana.errors import InvalidInput
from kaapana.platform import Platform
from kaapana.testing import ct_series, mr_series
from kaapana.workflows.views import RunDetailView
from tests.workflows.conftest import Site
from tests.workflows.test_library_segment import store


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


def _run(site: Site, workflow: str, **kwargs: object) -> RunDetailView:
    engine = site.platform.workflows
    run = engine.start_run(project_pk=site.project_pk, workflow=workflow, **kwargs)  # type: ignore[arg-type]
    return engine.wait(run.id, timeout=120)


@pytest.mark.parametrize("database_url", [None], ids=["sqlite"])  # tagging runs on both elsewhere
def test_train_test_split_tags_whole_patients_stratified_by_modality(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    platform = site.platform
    patient_of: dict[str, str] = {}
    modality_of: dict[str, str] = {}
    for number in range(12):
        make = ct_series if number < 8 else mr_series
        for repeat in range(2 if number % 4 == 0 else 1):  # some patients have two studies
            series = make(
                patient_id=f"SPLIT{number:02d}",
                rows=16,
                columns=16,
                slices=2,
                seed=number * 10 + repeat,
            )
            uid = store(platform, series, dataset="cohort")
            patient_of[uid] = series[0].PatientID
            modality_of[uid] = series[0].Modality
    catalog = platform.catalog
    stale = next(iter(patient_of))
    catalog.tag(project_pk=site.project_pk, series_instance_uids=[stale], add=["split:test"])
    params = {
        "stratify_by": "Modality",
        "test_fraction": 0.25,
        "validation_fraction": 0.25,
        "seed": 5,
    }
    run = _run(site, "train-test-split", dataset="cohort", params=params)
    assert run.state == "succeeded", [t.error for t in run.tasks]

    tags = _series_tags(platform, site.project_pk)
    assert set(tags) == set(patient_of)
    assert all(len(found) == 1 for found in tags.values())  # the stale tag was replaced
    part_of_patient: dict[str, set[str]] = defaultdict(set)
    for uid, found in tags.items():
        part_of_patient[patient_of[uid]] |= found
    assert all(len(parts) == 1 for parts in part_of_patient.values())
    patients = defaultdict(set)
    for uid, found in tags.items():
        patients[modality_of[uid], next(iter(found))].add(patient_of[uid])
    assert {key: len(value) for key, value in patients.items()} == {
        ("CT", "split:test"): 2,
        ("CT", "split:validation"): 2,
        ("CT", "split:train"): 4,
        ("MR", "split:test"): 1,
        ("MR", "split:validation"): 1,
        ("MR", "split:train"): 2,
    }
    names = [a.name for a in platform.workflows.artifacts(run.id)]
    table_name = next(name for name in names if name.endswith("split.csv"))
    _, stream = platform.workflows.open_artifact(run.id, table_name)
    with stream:
        rows = list(csv.DictReader(io.StringIO(stream.read().decode())))
    assert {row["SeriesInstanceUID"]: "split:" + row["part"] for row in rows} == {
        uid: next(iter(found)) for uid, found in tags.items()
    }


def test_tag_dataset_adds_and_removes_tags_on_every_input_series(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=3)
    catalog = site.platform.catalog
    catalog.tag(project_pk=site.project_pk, series_instance_uids=site.series[:1], add=["draft"])
    run = _run(
        site,
        "tag-dataset",
        dataset="cohort",
        params={"add": ["reviewed", "batch 1"], "remove": ["draft"]},
    )
    assert run.state == "succeeded"
    tags = _series_tags(site.platform, site.project_pk)
    assert {uid: found for uid, found in tags.items()} == {
        uid: {"reviewed", "batch 1"} for uid in site.series
    }
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
        users.create(name, password="a-good-password")
        users.set_role(name, project, role)

    refused = _run(site, "delete-series", dataset="cohort", created_by="sci")
    assert refused.state == "failed"
    assert "created by 'sci', who is neither a principal investigator of project 'admin'" in (
        refused.tasks[0].error
    )
    assert _held(platform, site.project_pk) == set(site.series)

    deleted = _run(site, "delete-series", series=site.series[:1], created_by="pi")
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


@pytest.mark.parametrize("database_url", [None], ids=["sqlite"])
def test_over_rest_a_scientist_may_not_start_delete_series(
    make_site: Callable[..., Site],
) -> None:
    settings = make_site(series=0).platform.settings
    app = create_app(settings)
    with TestClient(app) as client:
        platform: Platform = app.state.platform
        project = platform.archive.projects.create("study-x")
        store(platform, ct_series(patient_id="DEL1", rows=16, columns=16, slices=2), dataset=None)
        headers = {}
        for name, role in (
            ("pi_x", RoleValues.principal_investigator),
            ("sci_x", RoleValues.scientist),
        ):
            user = platform.auth.users.create(name, password="a-good-password")
            platform.auth.users.set_role(name, project, role)
            token = platform.auth.tokens.issue(user, name="t", can_write=True)
            headers[name] = {"Authorization": f"Bearer {token.secret}"}
        body = {"workflow": "delete-series", "project": "study-x", "series": ["1.2.3"]}
        answer = client.post("/api/v1/runs", json=body, headers=headers["sci_x"])
        assert answer.status_code == 403
        assert "manage access to project of workflow 'delete-series' denied" in answer.text
        answer = client.post("/api/v1/runs", json=body, headers=headers["pi_x"])
        assert answer.status_code == 404 and "1.2.3" in answer.text  # past the role check
