"""Removing data from projects and from the archive, also across a crash mid-removal."""

from pathlib import Path

from sqlalchemy import func, select

from kaapana.archive.check import check
from kaapana.archive.deletion import INTENT_SUFFIX, remove
from kaapana.db.engine import session_factory
from kaapana.db.models import DatasetSeries, Instance, Patient, Study
from kaapana.platform import Platform
from kaapana.testing import ct_series
from tests.helpers import part10


def _count(platform: Platform, model: type) -> int:
    with session_factory(platform.engine)() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_unlink_then_delete_when_no_project_holds_it(platform: Platform) -> None:
    archive = platform.archive
    archive.projects.create("A")
    series = ct_series(rows=16, columns=16, slices=3, seed=11)
    for ds in series:
        archive.store_bytes(part10(ds), archive.target("A", "cohort"))
        archive.store_bytes(part10(ds), archive.target())
    study = series[0].StudyInstanceUID
    keys = [f"dicom/{study}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm" for ds in series]
    a = frozenset({archive.projects.get("A").id})
    first = remove(
        platform.engine,
        platform.store,
        study=study,
        projects=a,
        intents=platform.removal_intents,
        results=platform.series_results,
    )
    assert (first.series_unlinked, first.series_deleted, first.instances_deleted) == (1, 0, 0)
    assert all(platform.store.exists(key) for key in keys)  # admin still holds it
    assert _count(platform, DatasetSeries) == 0  # and A's dataset lost it
    second = remove(
        platform.engine,
        platform.store,
        study=study,
        projects=None,
        intents=platform.removal_intents,
        results=platform.series_results,
    )
    assert (second.series_deleted, second.instances_deleted) == (1, 3)
    assert not any(platform.store.exists(key) for key in keys)
    assert (_count(platform, Instance), _count(platform, Study), _count(platform, Patient)) == (
        0,
        0,
        0,
    )
    assert list(platform.removal_intents.glob(f"*{INTENT_SUFFIX}")) == []


def test_a_removal_interrupted_after_its_commit_is_finished_on_start(platform: Platform) -> None:
    archive = platform.archive
    deleted, sibling = ct_series(rows=16, columns=16, slices=2, seed=12)
    other = ct_series(rows=16, columns=16, slices=1, seed=13, patient_id="OTHER")[0]
    for ds in (deleted, sibling, other):
        archive.store_bytes(part10(ds), archive.target())
    study = deleted.StudyInstanceUID
    remove(
        platform.engine,
        platform.store,
        study=study,
        projects=None,
        intents=platform.removal_intents,
        results=platform.series_results,
    )
    # What a crash between the commit and the file deletion leaves: files without rows and the
    # intent; an intent of a removal that rolled back names files whose rows still exist.
    key = f"dicom/{study}/{deleted.SeriesInstanceUID}/{deleted.SOPInstanceUID}.dcm"
    platform.store.put(key, part10(deleted))
    other_key = (
        f"dicom/{other.StudyInstanceUID}/{other.SeriesInstanceUID}/{other.SOPInstanceUID}.dcm"
    )
    intents: Path = platform.removal_intents
    intents.mkdir(parents=True, exist_ok=True)
    (intents / f"crashed{INTENT_SUFFIX}").write_text(f"{key}\n{other_key}\n")
    settings = platform.settings
    platform.close()
    with Platform(settings) as restarted:
        assert not restarted.store.exists(key)
        assert restarted.store.exists(other_key)
        assert list(intents.glob(f"*{INTENT_SUFFIX}")) == []
        report = check(restarted.archive)
        assert report.reindexed == []  # nothing deleted comes back
        assert _count(restarted, Instance) == 1
