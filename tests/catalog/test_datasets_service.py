"""The ``Datasets`` service: selections, snapshots, live queries, members, names, audit."""

from typing import Any

import pytest
from sqlalchemy import func, select

from kaapana.catalog import DatasetKindValues, Datasets
from kaapana.db.engine import session_factory
from kaapana.db.models import Dataset, DatasetSeries, Series
from kaapana.errors import Conflict, InvalidInput, NotFound
from tests.catalog.dataset_cohort import DatasetCohort


def _modality(value: str) -> dict[str, Any]:
    return {"where": {"field": "Modality", "op": "=", "value": value}}


def _with_queries(dataset_cohort: DatasetCohort) -> Datasets:
    """The platform's datasets, whose queries the catalog answers once it has indexed."""
    dataset_cohort.platform.catalog.reindex()
    return dataset_cohort.platform.datasets


def _rows(dataset_cohort: DatasetCohort) -> tuple[int, int]:
    with session_factory(dataset_cohort.platform.engine)() as session:
        datasets = session.scalar(select(func.count()).select_from(Dataset)) or 0
        members = session.scalar(select(func.count()).select_from(DatasetSeries)) or 0
    return datasets, members


def test_selection_crud_with_counts_and_audit(dataset_cohort: DatasetCohort) -> None:
    datasets = dataset_cohort.platform.datasets
    ct = dataset_cohort.series_uids("CT")
    info = datasets.create(
        dataset_cohort.a, "lungs 2024", series_instance_uids=ct[:3], description="x", actor="ana"
    )
    assert (info.kind, info.description, info.summary.series) == ("selection", "x", 3)
    assert info.summary.modalities == {"CT": 3}
    assert datasets.add(dataset_cohort.a, "lungs 2024", ct[2:], actor="ana") == len(ct) - 3
    assert datasets.get(dataset_cohort.a, "lungs 2024").summary.series == len(ct)
    assert datasets.remove(dataset_cohort.a, "lungs 2024", ct[:2], actor="ana") == 2
    renamed = datasets.update(
        dataset_cohort.a, "lungs 2024", new_name="lungs", description="thorax CT", actor="ana"
    )
    assert (renamed.name, renamed.description, renamed.summary.series) == (
        "lungs",
        "thorax CT",
        len(ct) - 2,
    )
    assert [d.name for d in datasets.list(dataset_cohort.a)] == ["lungs"]
    assert datasets.list(dataset_cohort.b) == []
    datasets.delete(dataset_cohort.a, "lungs", actor="ana")
    with pytest.raises(NotFound, match="no dataset named 'lungs' in project 'A'"):
        datasets.get(dataset_cohort.a, "lungs")
    assert _rows(dataset_cohort) == (0, 0)
    assert (
        len(dataset_cohort.series_uids())
        == dataset_cohort.platform.datasets.create(
            dataset_cohort.a, "all", series_instance_uids=dataset_cohort.series_uids(), actor="ana"
        ).summary.series
    )  # deleting the dataset deleted no data
    actions = [e.action for e in dataset_cohort.platform.auth.audit.query(actor="ana", limit=10)]
    assert actions == [
        "dataset.create",
        "dataset.delete",
        "dataset.update",
        "dataset.remove",
        "dataset.add",
        "dataset.create",
    ]


def test_list_counts_every_dataset(dataset_cohort: DatasetCohort) -> None:
    datasets = _with_queries(dataset_cohort)
    datasets.create(
        dataset_cohort.a, "mr", series_instance_uids=dataset_cohort.series_uids("MR"), actor="t"
    )
    datasets.create(
        dataset_cohort.a, "all", series_instance_uids=dataset_cohort.series_uids(), actor="t"
    )
    datasets.create_live(dataset_cohort.a, "seg", query=_modality("SEG"), actor="t")
    listed = {d.name: d.summary for d in datasets.list(dataset_cohort.a)}
    assert listed == {d: datasets.get(dataset_cohort.a, d).summary for d in ("all", "mr", "seg")}
    assert listed["seg"].modalities == {"SEG": len(dataset_cohort.series_uids("SEG"))}
    assert listed["all"].series == len(dataset_cohort.series_uids())


def test_unknown_series_are_listed_and_nothing_changes(dataset_cohort: DatasetCohort) -> None:
    datasets = dataset_cohort.platform.datasets
    datasets.create(
        dataset_cohort.a, "one", series_instance_uids=dataset_cohort.series_uids()[:1], actor="t"
    )
    strangers = [f"1.2.3.{n}" for n in range(25)]
    with pytest.raises(InvalidInput) as error:
        datasets.add(
            dataset_cohort.a, "one", [*dataset_cohort.series_uids()[1:], *strangers], actor="t"
        )
    assert "25 series not found in the project" in error.value.detail
    assert "'1.2.3.19'" in error.value.detail and "'1.2.3.20'" not in error.value.detail
    assert "and 5 more" in error.value.detail
    assert datasets.get(dataset_cohort.a, "one").summary.series == 1
    b_only = dataset_cohort.platform.datasets  # a series of A is not visible from B
    with pytest.raises(InvalidInput, match="not found in the project"):
        b_only.create(
            dataset_cohort.b, "x", series_instance_uids=dataset_cohort.series_uids()[1:2], actor="t"
        )
    with pytest.raises(InvalidInput, match=r"invalid UIDs: '\.\./etc'"):
        datasets.remove(dataset_cohort.a, "one", ["../etc", "1.2"], actor="t")
    assert _rows(dataset_cohort) == (1, 1)


@pytest.mark.parametrize(
    "name", ["", "a/b", "x" * 65, " padded", "tab\tname", "new\nline"], ids=repr
)
def test_invalid_names_are_refused(dataset_cohort: DatasetCohort, name: str) -> None:
    with pytest.raises(InvalidInput, match="'name' must be 1-64 printable characters"):
        dataset_cohort.platform.datasets.create(
            dataset_cohort.a, name, series_instance_uids=dataset_cohort.series_uids()[:1], actor="t"
        )
    assert _rows(dataset_cohort) == (0, 0)


def test_names_are_unique_per_project_and_unicode_is_fine(dataset_cohort: DatasetCohort) -> None:
    datasets = dataset_cohort.platform.datasets
    first = dataset_cohort.series_uids()[:1]
    datasets.create(dataset_cohort.a, "Lunge Kohorte ü 1", series_instance_uids=first, actor="t")
    datasets.create(dataset_cohort.a, "other", series_instance_uids=first, actor="t")
    with pytest.raises(Conflict, match="exists in 'A'"):
        datasets.create(
            dataset_cohort.a, "Lunge Kohorte ü 1", series_instance_uids=first, actor="t"
        )
    with pytest.raises(Conflict):
        datasets.update(dataset_cohort.a, "other", new_name="Lunge Kohorte ü 1", actor="t")
    shared = [dataset_cohort.shared]
    assert datasets.create(dataset_cohort.b, "other", series_instance_uids=shared, actor="t").name
    with pytest.raises(InvalidInput, match="at least one SeriesInstanceUID"):
        datasets.create(dataset_cohort.a, "empty", series_instance_uids=[], actor="t")
    with pytest.raises(InvalidInput, match="'description' must be at most 1024"):
        datasets.update(dataset_cohort.a, "other", description="d" * 1025, actor="t")


def test_snapshot_copies_members_and_keeps_its_query(dataset_cohort: DatasetCohort) -> None:
    datasets = _with_queries(dataset_cohort)
    ct = select(Series.id).where(Series.modality == "CT")
    snapshot = datasets.create_snapshot(
        dataset_cohort.a, "ct then", series_ids=ct, query=_modality("CT"), actor="t"
    )
    assert (snapshot.kind, snapshot.query) == (DatasetKindValues.snapshot, _modality("CT"))
    assert snapshot.summary.modalities == {"CT": len(dataset_cohort.series_uids("CT"))}
    live = datasets.create_live(dataset_cohort.a, "ct now", query=_modality("CT"), actor="t")
    assert live.summary == snapshot.summary
    datasets.remove(dataset_cohort.a, "ct then", dataset_cohort.series_uids("CT")[:1], actor="t")
    assert (
        datasets.get(dataset_cohort.a, "ct then").summary.series
        == len(dataset_cohort.series_uids("CT")) - 1
    )
    assert datasets.get(dataset_cohort.a, "ct now").summary == live.summary
    from_query = datasets.create_snapshot(
        dataset_cohort.a, "seg", query=_modality("SEG"), actor="t"
    )
    assert from_query.summary.modalities == {"SEG": len(dataset_cohort.series_uids("SEG"))}
    in_b = datasets.create_snapshot(dataset_cohort.b, "b", series_ids=select(Series.id), actor="t")
    assert in_b.summary.series == 1  # narrowed to what B holds
    with pytest.raises(InvalidInput, match="selects no series"):
        datasets.create_snapshot(dataset_cohort.a, "none", query=_modality("XA"), actor="t")
    with pytest.raises(InvalidInput, match="is live"):
        datasets.add(dataset_cohort.a, "ct now", dataset_cohort.series_uids("MR"), actor="t")
    with pytest.raises(InvalidInput, match="unknown key 'Nope'"):
        datasets.create_live(dataset_cohort.a, "bad", query={"Nope": 1}, actor="t")
    with pytest.raises(InvalidInput, match="unknown field 'Modalty'"):
        datasets.create_live(
            dataset_cohort.a, "bad", query={"where": {"field": "Modalty", "value": "CT"}}, actor="t"
        )


def test_queries_need_the_catalog(dataset_cohort: DatasetCohort) -> None:
    platform = dataset_cohort.platform
    datasets = Datasets(engine=platform.engine, audit=platform.auth.audit)  # no query language
    with pytest.raises(InvalidInput, match="no catalog query language connected"):
        datasets.create_live(dataset_cohort.a, "live", query=_modality("CT"), actor="t")
    with pytest.raises(InvalidInput, match="no catalog query language connected"):
        datasets.create_snapshot(dataset_cohort.a, "snap", query=_modality("CT"), actor="t")
    with pytest.raises(InvalidInput, match="'query' must be a non-empty JSON object"):
        datasets.create_live(dataset_cohort.a, "live", query={}, actor="t")
    assert _rows(dataset_cohort) == (0, 0)


def test_members_are_paged_in_patient_order(dataset_cohort: DatasetCohort) -> None:
    datasets = dataset_cohort.platform.datasets
    uids = dataset_cohort.series_uids()
    datasets.create(dataset_cohort.a, "all", series_instance_uids=uids, actor="t")
    pages = [datasets.members(dataset_cohort.a, "all", limit=5, offset=o) for o in range(0, 15, 5)]
    members = [m for page in pages for m in page.items]
    assert {page.total for page in pages} == {len(uids)}
    assert sorted(m.series_instance_uid for m in members) == sorted(uids)
    assert [m.patient_id for m in members] == sorted(m.patient_id for m in members)
    by_uid = {ds.SeriesInstanceUID: ds for ds in dataset_cohort.objects}
    for member in members:
        ds = by_uid[member.series_instance_uid]
        assert (member.study_instance_uid, member.modality, member.study_date) == (
            ds.StudyInstanceUID,
            ds.Modality,
            ds.StudyDate,
        )
        assert member.number_of_instances == sum(
            1 for o in dataset_cohort.objects if o.SeriesInstanceUID == member.series_instance_uid
        )
