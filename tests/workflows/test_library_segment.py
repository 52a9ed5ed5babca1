"""segment-ct and segment-otsu through the engine: SEGs re-enter the archive with provenance."""

from collections.abc import Callable

from pydicom import Dataset, dcmread
from sqlalchemy import select

from kaapana.catalog import thumbnail_key
from kaapana.catalog.series_jobs import process_arrived_series
from kaapana.db.models import Instance, RunOutput, Series, SeriesProject, SeriesReference
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.testing.synthetic import mr_series
from tests.helpers import part10
from tests.workflows.conftest import Site


def store(platform: Platform, datasets: list[Dataset], dataset: str | None = None) -> str:
    target = platform.archive.target("admin", dataset)
    for ds in datasets:
        platform.archive.store_bytes(part10(ds), target)
    return str(datasets[0].SeriesInstanceUID)


def read_stored(platform: Platform, key: str) -> Dataset:
    with platform.store.open(key) as stream:
        return dcmread(stream)


def small_ct(seed: int = 0) -> list[Dataset]:
    """Large pixels keep the phantom's organs above segment-ct's minimum volumes."""
    return ct_series(
        patient_id=f"SEG{seed}", rows=32, columns=32, slices=12, pixel_spacing=8.0, seed=seed
    )


def test_segment_ct_stores_a_seg_of_the_source_linked_to_the_run_with_a_thumbnail(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    platform = site.platform
    ct_uid = store(platform, small_ct())
    run = platform.workflows.start_run(
        project_pk=site.project_pk, workflow="segment-ct", series=[ct_uid]
    )
    done = platform.workflows.wait(run.id, timeout=180)
    assert done.state == "succeeded", done
    with platform.archive._sessions() as session:
        (output,) = session.scalars(select(RunOutput).where(RunOutput.run_pk == run.id))
        seg_series, key = session.execute(
            select(Series, Instance.storage_key)
            .join(Instance, Instance.series_pk == Series.id)
            .where(Instance.sop_instance_uid == output.sop_instance_uid)
        ).one()
        projects = set(
            session.scalars(
                select(SeriesProject.project_pk).where(SeriesProject.series_pk == seg_series.id)
            )
        )
    assert output.source_series_instance_uid == ct_uid and output.task_pk is not None
    assert seg_series.modality == "SEG" and projects == {site.project_pk}
    seg = read_stored(platform, key)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct_uid
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["body", "lungs", "bones"]
    manifest = platform.workflows.manifest(run.id)
    assert [d["sop_instance_uid"] for d in manifest["outputs"]["dicom"]] == [seg.SOPInstanceUID]

    uid = seg_series.series_instance_uid
    assert not platform.results.exists(thumbnail_key(uid))
    assert process_arrived_series(platform.series_media, uid)
    with platform.archive._sessions() as session:
        referenced = session.scalars(
            select(SeriesReference.referenced_series_uid).where(
                SeriesReference.series_pk == seg_series.id
            )
        ).all()
    assert referenced == [ct_uid]
    assert platform.results.get(thumbnail_key(uid)).startswith(b"\x89PNG")


def test_an_mr_fails_segment_ct_with_its_reason_while_a_ct_of_the_run_succeeds(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    platform = site.platform
    ct_uid = store(platform, small_ct(seed=1), dataset="mixed")
    mr_uid = store(platform, mr_series(rows=32, columns=32, slices=8), dataset="mixed")
    run = platform.workflows.start_run(
        project_pk=site.project_pk, workflow="segment-ct", dataset="mixed"
    )
    done = platform.workflows.wait(run.id, timeout=180)
    assert done.state == "failed"
    tasks = {t.series_instance_uid: t for t in done.tasks}
    assert tasks[ct_uid].state == "succeeded"
    assert tasks[mr_uid].state == "failed" and "MR" in tasks[mr_uid].error
    with platform.archive._sessions() as session:
        sources = session.scalars(
            select(RunOutput.source_series_instance_uid).where(RunOutput.run_pk == run.id)
        ).all()
    assert sources == [ct_uid]


def test_segment_otsu_stores_one_segment_over_an_mr(make_site: Callable[..., Site]) -> None:
    site = make_site(series=0)
    platform = site.platform
    mr_uid = store(platform, mr_series(rows=32, columns=32, slices=8))
    run = platform.workflows.start_run(
        project_pk=site.project_pk,
        workflow="segment-otsu",
        series=[mr_uid],
        params={"structure": "head"},
    )
    done = platform.workflows.wait(run.id, timeout=180)
    assert done.state == "succeeded", done
    with platform.archive._sessions() as session:
        (sop,) = session.scalars(
            select(RunOutput.sop_instance_uid).where(RunOutput.run_pk == run.id)
        )
        key = session.scalar(select(Instance.storage_key).where(Instance.sop_instance_uid == sop))
    seg = read_stored(platform, key)
    assert seg.Modality == "SEG" and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == mr_uid
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["head"]
