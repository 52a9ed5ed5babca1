"""Storing synthetic series and letting them arrive; SR and PDF objects to store with them."""

import time
from collections.abc import Iterable, Sequence

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    ComprehensiveSRStorage,
    EncapsulatedPDFStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from kaapana.archive import SeriesQuietMonitor
from kaapana.catalog.series_workflow import SERIES_MEDIA
from kaapana.platform import Platform
from kaapana.workflows.views import RunDetailView
from tests.helpers import part10


def store(platform: Platform, datasets: Iterable[Dataset], project: str = "admin") -> None:
    target = platform.archive.target(project)
    for ds in datasets:
        platform.archive.store_bytes(part10(ds), target)


def arrive(platform: Platform) -> list[RunDetailView]:
    """Announce every stored series (as the monitor does once they are quiet) and wait until
    the runs of the service workflow ``series-media`` have processed them; returns those runs."""
    monitor = SeriesQuietMonitor(platform.engine, platform.events, quiet_seconds=0.001)
    time.sleep(0.01)
    monitor.poll()
    return series_media_runs(platform)


def series_media_runs(platform: Platform) -> list[RunDetailView]:
    """Every run of ``series-media``, once each has ended."""
    runs = [
        r
        for r in platform.workflows.list_runs(limit=1000, services=True)
        if r.workflow == SERIES_MEDIA
    ]
    ended = [platform.workflows.wait(r.id, timeout=120, poll=0.05) for r in runs]
    assert all(r.finished_at is not None for r in ended), [(r.id, r.state) for r in ended]
    return ended


def _document(image: Dataset, **values: object) -> Dataset:
    """A non-image object in the study of ``image``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword in (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "StudyID",
        "ReferringPhysicianName",
    ):
        setattr(ds, keyword, image.get(keyword, ""))
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesNumber = 900
    ds.InstanceNumber = 1
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def sr_referencing(image: Sequence[Dataset]) -> Dataset:
    first = image[0]
    evidence = Dataset()
    evidence.StudyInstanceUID = first.StudyInstanceUID
    referenced = Dataset()
    referenced.SeriesInstanceUID = first.SeriesInstanceUID
    sop = Dataset()
    sop.ReferencedSOPClassUID = first.SOPClassUID
    sop.ReferencedSOPInstanceUID = first.SOPInstanceUID
    referenced.ReferencedSOPSequence = [sop]
    evidence.ReferencedSeriesSequence = [referenced]
    return _document(
        first,
        SOPClassUID=ComprehensiveSRStorage,
        Modality="SR",
        ValueType="CONTAINER",
        ContinuityOfContent="SEPARATE",
        CompletionFlag="COMPLETE",
        VerificationFlag="UNVERIFIED",
        CurrentRequestedProcedureEvidenceSequence=[evidence],
    )


def pdf_in_study_of(image: Sequence[Dataset]) -> Dataset:
    return _document(
        image[0],
        SOPClassUID=EncapsulatedPDFStorage,
        Modality="DOC",
        MIMETypeOfEncapsulatedDocument="application/pdf",
        EncapsulatedDocument=b"%PDF-1.4\n%%EOF\n",
        BurnedInAnnotation="YES",
    )
