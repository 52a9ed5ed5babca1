"""Manifests parsed back and compared with what was stored; bulk deletion of series."""

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, union_all

from kaapana.catalog import ManifestFormatValues
from kaapana.catalog.manifest import COLUMNS, manifest_csv, manifest_json
from kaapana.db.engine import session_factory
from kaapana.db.models import Dataset, DatasetSeries, Series, SeriesProject
from kaapana.errors import InvalidInput
from tests.catalog.dataset_cohort import DatasetCohort
from tests.helpers import part10


def _expected(dataset_cohort: DatasetCohort, uids: list[str]) -> dict[str, dict[str, str]]:
    """Manifest rows as the stored objects say they must be (CSV text values)."""
    rows: dict[str, dict[str, str]] = {}
    for ds in dataset_cohort.objects:
        if ds.SeriesInstanceUID in uids:
            row = rows.setdefault(
                ds.SeriesInstanceUID,
                {
                    "PatientID": ds.PatientID,
                    "StudyInstanceUID": ds.StudyInstanceUID,
                    "StudyDate": ds.StudyDate,
                    "SeriesInstanceUID": ds.SeriesInstanceUID,
                    "Modality": ds.Modality,
                    "SeriesDescription": ds.get("SeriesDescription", ""),
                    "BodyPartExamined": ds.get("BodyPartExamined", ""),
                    "NumberOfInstances": "0",
                },
            )
            row["NumberOfInstances"] = str(int(row["NumberOfInstances"]) + 1)
    return rows


def test_csv_manifest_lists_every_member_series(dataset_cohort: DatasetCohort) -> None:
    uids = dataset_cohort.series_uids()[:7]
    dataset_cohort.platform.datasets.create(
        dataset_cohort.a, "seven", series_instance_uids=uids, actor="t"
    )
    text = "".join(
        dataset_cohort.platform.datasets.manifest(
            dataset_cohort.a, "seven", format=ManifestFormatValues.csv, actor="t"
        )
    )
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    assert {row["SeriesInstanceUID"]: row for row in reader} == _expected(dataset_cohort, uids)
    assert (
        dataset_cohort.platform.auth.audit.query(action="dataset.manifest")[0].target
        == "dataset:seven"
    )


def test_json_manifest_has_every_instance_with_its_sha256(dataset_cohort: DatasetCohort) -> None:
    uids = dataset_cohort.series_uids()
    dataset_cohort.platform.datasets.create(
        dataset_cohort.a, "all", series_instance_uids=uids, actor="t"
    )
    text = "".join(
        dataset_cohort.platform.datasets.manifest(
            dataset_cohort.a, "all", format=ManifestFormatValues.json, actor="t"
        )
    )
    manifest = json.loads(text)
    assert (manifest["project"], manifest["dataset"], manifest["kind"]) == ("A", "all", "selection")
    expected = _expected(dataset_cohort, uids)
    digests = {
        ds.SOPInstanceUID: hashlib.sha256(part10(ds)).hexdigest() for ds in dataset_cohort.objects
    }
    assert len(manifest["series"]) == len(uids)
    for series in manifest["series"]:
        instances = series.pop("Instances")
        assert {k: str(v) for k, v in series.items()} == expected[series["SeriesInstanceUID"]]
        assert len(instances) == series["NumberOfInstances"]
        for instance in instances:
            assert instance["sha256"] == digests[instance["SOPInstanceUID"]]


@pytest.mark.parametrize("page_size", [1, 4])
def test_manifests_stream_in_pages(dataset_cohort: DatasetCohort, page_size: int) -> None:
    everything = select(Series.id)
    chunks = list(manifest_csv(dataset_cohort.platform.engine, everything, page_size=page_size))
    series = len(dataset_cohort.series_uids())
    assert len(chunks) == 1 + -(-series // page_size)  # the header, then one chunk per page
    parts = list(
        manifest_json(
            dataset_cohort.platform.engine, everything, header={"x": 1}, page_size=page_size
        )
    )
    assert len(json.loads("".join(parts))["series"]) == series
    twice = union_all(select(Series.id), select(Series.id)).subquery()
    doubled = list(
        manifest_csv(dataset_cohort.platform.engine, select(twice.c[0]), page_size=page_size)
    )
    assert "".join(doubled) == "".join(chunks)  # a series selected twice is listed once
    empty = "".join(
        manifest_json(dataset_cohort.platform.engine, everything.where(Series.id < 0), header={})
    )
    assert json.loads(empty) == {"series": []}


def _links(dataset_cohort: DatasetCohort, uid: str) -> set[int]:
    with session_factory(dataset_cohort.platform.engine)() as session:
        return set(
            session.scalars(
                select(SeriesProject.project_pk)
                .join(Series, SeriesProject.series_pk == Series.id)
                .where(Series.series_instance_uid == uid)
            )
        )


def test_deleting_series_leaves_the_archive_only_when_no_project_holds_them(
    dataset_cohort: DatasetCohort,
) -> None:
    platform = dataset_cohort.platform
    shared, own = dataset_cohort.shared, dataset_cohort.series_uids("MR")[0]
    platform.datasets.create(
        dataset_cohort.a, "both", series_instance_uids=[shared, own], actor="t"
    )
    platform.datasets.create(dataset_cohort.b, "b", series_instance_uids=[shared], actor="t")
    own_files = [Path(platform.store.local_path(k) or "") for k in dataset_cohort.storage_keys(own)]
    shared_files = [
        Path(platform.store.local_path(k) or "") for k in dataset_cohort.storage_keys(shared)
    ]
    assert all(path.is_file() for path in own_files + shared_files)

    removal = platform.series_deletion.delete(dataset_cohort.a, [shared, own, own], actor="pi")

    assert (removal.series_unlinked, removal.series_deleted) == (2, 1)
    assert removal.instances_deleted == len(own_files)
    assert (
        _links(dataset_cohort, shared) == {dataset_cohort.b.id}
        and _links(dataset_cohort, own) == set()
    )
    assert not any(path.exists() for path in own_files)
    assert all(path.is_file() for path in shared_files)
    assert platform.datasets.get(dataset_cohort.a, "both").summary.series == 0
    assert platform.datasets.get(dataset_cohort.b, "b").summary.series == 1
    event = platform.auth.audit.query(action="series.delete")[0]
    assert (event.actor, event.project, event.detail["series_deleted"]) == ("pi", "A", 1)
    assert event.detail["series"] == [shared, own]


def test_deleting_unknown_series_changes_nothing(dataset_cohort: DatasetCohort) -> None:
    platform = dataset_cohort.platform
    uids = dataset_cohort.series_uids()
    platform.datasets.create(dataset_cohort.a, "all", series_instance_uids=uids, actor="t")
    with pytest.raises(InvalidInput, match=r"1 series not found in the project: '1\.2\.3'"):
        platform.series_deletion.delete(dataset_cohort.a, [*uids, "1.2.3"], actor="pi")
    with pytest.raises(InvalidInput, match="not found in the project"):
        platform.series_deletion.delete(dataset_cohort.b, uids[1:2], actor="pi")  # held by A only
    with session_factory(platform.engine)() as session:
        assert session.scalar(select(func.count()).select_from(Series)) == len(uids)
        assert session.scalar(select(func.count()).select_from(DatasetSeries)) == len(uids)
        assert session.scalar(select(func.count()).select_from(Dataset)) == 1
    assert all(
        Path(platform.store.local_path(k) or "").is_file()
        for k in dataset_cohort.storage_keys(uids[0])
    )
    assert platform.auth.audit.query(action="series.delete") == []
