"""Read a received object once: validate its framing, pull the index columns, build its DICOM JSON.

Everything the index and QIDO/WADO metadata need comes out of this single parse; the stored bytes
are never touched again on the receiving path.
"""

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ImplicitVRLittleEndian

from kaapana.errors import InvalidDicom

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_UNDEFINED_LENGTH = 0xFFFFFFFF
BULK_DATA_THRESHOLD = 1024

# Attributes that differ from instance to instance; dropped from the series-level JSON.
_INSTANCE_LEVEL_TAGS = frozenset(
    pydicom.datadict.tag_for_keyword(keyword)
    for keyword in (
        "SOPInstanceUID",
        "InstanceNumber",
        "ImagePositionPatient",
        "SliceLocation",
        "ContentDate",
        "ContentTime",
        "AcquisitionTime",
        "AcquisitionDateTime",
        "InstanceCreationDate",
        "InstanceCreationTime",
        "WindowCenter",
        "WindowWidth",
        "NumberOfFrames",
    )
)


def clean_uid(value: object, keyword: str) -> str:
    """A UID as stored in the index; refuse anything that could not be one (and so no path)."""
    uid = str(value or "").strip(" \x00")
    if not uid:
        raise InvalidDicom(f"{keyword} (required by the index) is missing")
    if len(uid) > 64 or not _UID.match(uid):
        raise InvalidDicom(f"{keyword} is not a valid UID: {uid[:80]!r}")
    return uid


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    """A string attribute as the index stores it: no NUL (PostgreSQL refuses it), clipped."""
    value = ds.get(keyword)
    if value is None:
        return ""
    text = str(value).replace("\x00", "").strip()
    return text[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One received object, parsed: everything the index writer needs, nothing it must look up."""

    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    study_instance_uid: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    study_description: str
    referring_physician_name: str
    series_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    series_date: str
    series_time: str
    sop_instance_uid: str
    sop_class_uid: str
    instance_number: int | None
    number_of_frames: int
    transfer_syntax_uid: str
    size: int
    sha256: str
    instance_json: dict[str, Any]
    series_json: dict[str, Any]

    @property
    def storage_key(self) -> str:
        return storage_key_for(
            self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid
        )


def storage_key_for(
    study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str
) -> str:
    """``dicom/<Study>/<Series>/<SOP>.dcm``: validated UIDs only, so the key is a safe path."""
    return f"dicom/{study_instance_uid}/{series_instance_uid}/{sop_instance_uid}.dcm"


def _check_framing(ds: Dataset, source: str) -> None:
    """pydicom reads truncated data silently; a value shorter than declared betrays it."""
    for element in ds._dict.values():
        if isinstance(element, RawDataElement):
            length, value = element.length, element.value
            if length != _UNDEFINED_LENGTH and value is not None and len(value) != length:
                raise InvalidDicom(
                    f"{source}: element {element.tag} declares {length} bytes but only "
                    f"{len(value)} follow (truncated or absurd length)"
                )


def ensure_part10(data: bytes) -> bytes:
    """Part 10 bytes for ``data``; a bare data set gets file meta, its bytes unchanged.

    Only used for imports of raw data sets; DIMSE and STOW payloads arrive as Part 10 already.
    """
    if len(data) >= 132 and data[128:132] == b"DICM":
        return data
    ds = read_dataset(data, source="data set", force=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = clean_uid(ds.get("SOPClassUID"), "SOPClassUID")
    meta.MediaStorageSOPInstanceUID = clean_uid(ds.get("SOPInstanceUID"), "SOPInstanceUID")
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    buffer = io.BytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue() + data


def read_dataset(data: bytes, *, source: str, force: bool = False) -> FileDataset:
    """Parse ``data`` fully; framing errors and parser complaints become ``InvalidDicom``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = pydicom.dcmread(io.BytesIO(data), force=force)
    except InvalidDicomError as exc:
        raise InvalidDicom(f"{source}: not a DICOM Part 10 object ({exc})") from exc
    except Exception as exc:
        raise InvalidDicom(f"{source}: unreadable DICOM ({type(exc).__name__}: {exc})") from exc
    _check_framing(ds, source)
    if len(ds._dict) == 0:
        raise InvalidDicom(f"{source}: no data elements")
    return ds


def _bulk_data_uri(prefix: str) -> Any:
    def handler(element: DataElement) -> str:
        return f"{prefix}/bulkdata/{element.tag:08X}"

    return handler


def parse_instance(data: bytes, *, source: str = "object") -> InstanceRecord:
    """Validate and describe one Part 10 object; raise ``InvalidDicom`` with the reason.

    Values that break their VR's rules but still convert (a long UI, a DS with too many digits)
    are tolerated, as real scanners produce them; values that cannot convert at all are refused.
    """
    ds = read_dataset(data, source=source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _describe(ds, data, source)


def _describe(ds: FileDataset, data: bytes, source: str) -> InstanceRecord:
    transfer_syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    if not transfer_syntax:
        raise InvalidDicom(f"{source}: file meta lacks TransferSyntaxUID")
    study_uid = clean_uid(ds.get("StudyInstanceUID"), "StudyInstanceUID")
    series_uid = clean_uid(ds.get("SeriesInstanceUID"), "SeriesInstanceUID")
    sop_uid = clean_uid(ds.get("SOPInstanceUID"), "SOPInstanceUID")
    sop_class = clean_uid(
        ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID"), "SOPClassUID"
    )
    prefix = f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    try:
        instance_json = ds.to_json_dict(BULK_DATA_THRESHOLD, _bulk_data_uri(prefix))
    except Exception as exc:
        raise InvalidDicom(
            f"{source}: a value does not match its VR ({type(exc).__name__}: {exc})"
        ) from exc
    series_json = {
        tag: value
        for tag, value in instance_json.items()
        if int(tag, 16) not in _INSTANCE_LEVEL_TAGS and "BulkDataURI" not in value
    }
    return InstanceRecord(
        patient_id=_text(ds, "PatientID", 64),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID", 64),
        patient_name=_text(ds, "PatientName", 324),
        patient_birth_date=_text(ds, "PatientBirthDate", 8),
        patient_sex=_text(ds, "PatientSex", 16),
        study_instance_uid=study_uid,
        study_date=_text(ds, "StudyDate", 8),
        study_time=_text(ds, "StudyTime", 16),
        accession_number=_text(ds, "AccessionNumber", 16),
        study_id=_text(ds, "StudyID", 16),
        study_description=_text(ds, "StudyDescription", 64),
        referring_physician_name=_text(ds, "ReferringPhysicianName", 324),
        series_instance_uid=series_uid,
        modality=_text(ds, "Modality", 16),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", 64),
        body_part_examined=_text(ds, "BodyPartExamined", 16),
        series_date=_text(ds, "SeriesDate", 8),
        series_time=_text(ds, "SeriesTime", 16),
        sop_instance_uid=sop_uid,
        sop_class_uid=sop_class,
        instance_number=_int(ds, "InstanceNumber"),
        number_of_frames=_int(ds, "NumberOfFrames") or 1,
        transfer_syntax_uid=transfer_syntax,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        instance_json=instance_json,
        series_json=series_json,
    )


__all__ = [
    "InstanceRecord",
    "clean_uid",
    "ensure_part10",
    "parse_instance",
    "read_dataset",
    "storage_key_for",
]
