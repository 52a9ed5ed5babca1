"""Read a received object once: validate its framing, pull the index columns, build its DICOM JSON.

Everything the index and QIDO/WADO metadata need comes out of this single parse; the stored bytes
are never touched again on the receiving path.
"""

import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ImplicitVRLittleEndian
from pydicom.valuerep import VR

from kaapana.archive.dicomjson import dataset_json
from kaapana.errors import InvalidDicom

log = logging.getLogger(__name__)
UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_UNDEFINED_LENGTH = 0xFFFFFFFF
_VALID_VRS = frozenset(vr.value for vr in VR)
_PLAIN_VRS = frozenset({None, "AE", "AS", "CS", "DA", "DT", "IS", "LO", "PN", "SH", "TM", "UI"})
_PLAIN_INT = re.compile(r" *[+-]?[0-9]+ *")
_KEYWORD_TAGS: dict[str, int] = {}
BULK_DATA_THRESHOLD = 1024
DEFER_SIZE = 16 * 1024

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
    if len(uid) > 64 or not UID_PATTERN.match(uid):
        raise InvalidDicom(f"{keyword} is not a valid UID: {uid[:80]!r}")
    return uid


def _plain(ds: Dataset, keyword: str) -> str | None:
    """The value as it is in the raw bytes, when pydicom's conversion could change nothing but
    padding (one value, ASCII, a text VR): the index columns then need no conversion. None
    when pydicom must convert it; "" when the attribute is absent."""
    tag = _KEYWORD_TAGS.get(keyword)
    if tag is None:
        tag = _KEYWORD_TAGS[keyword] = pydicom.datadict.tag_for_keyword(keyword)
    element = ds._dict.get(tag)
    if element is None:
        return ""
    if not isinstance(element, RawDataElement) or element.VR not in _PLAIN_VRS:
        return None
    value = element.value
    if value is None or not value.isascii() or b"\\" in value or b"\x1b" in value:
        return None
    return value.decode("ascii")


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    """A string attribute as the index stores it: no NUL (PostgreSQL refuses it), clipped."""
    plain = _plain(ds, keyword)
    if plain is not None:
        return plain.replace("\x00", "").strip()[:limit]
    value = ds.get(keyword)
    if value is None:
        return ""
    text = str(value).replace("\x00", "").strip()
    return text[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    plain = _plain(ds, keyword)
    if plain is not None:
        plain = plain.rstrip(" \x00")
        if not plain:
            return None
        if _PLAIN_INT.fullmatch(plain):
            return int(plain)
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


def _check_framing(ds: Dataset, source: str, size: int) -> None:
    """pydicom reads truncated data and unknown VR codes silently; both are caught here."""
    for element in ds._dict.values():
        if isinstance(element, RawDataElement):
            if element.VR is not None and element.VR not in _VALID_VRS:
                raise InvalidDicom(
                    f"{source}: element {element.tag} has an unknown VR {element.VR!r}"
                )
            length, value = element.length, element.value
            if length == _UNDEFINED_LENGTH:
                continue
            available = len(value) if value is not None else size - element.value_tell
            if available < length or (value is not None and len(value) != length):
                raise InvalidDicom(
                    f"{source}: element {element.tag} declares {length} bytes but only "
                    f"{max(available, 0)} follow (truncated or absurd length)"
                )


def ensure_part10(data: bytes) -> bytes:
    """Part 10 bytes for ``data``; a bare data set gets file meta, its bytes unchanged.

    Also restores the preamble of file meta written without one. Used for imports and STOW-RS
    parts; DIMSE payloads get their file meta from the association.
    """
    if len(data) >= 132 and data[128:132] == b"DICM":
        return data
    if data[:2] == b"\x02\x00":  # file meta written without preamble (pydicom's default)
        return b"\x00" * 128 + b"DICM" + data
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
    """Parse ``data``; framing errors and parser complaints become ``InvalidDicom``.

    Values longer than ``DEFER_SIZE`` (pixel data, mostly) are not copied out of ``data``: they
    are read from it if anyone asks (the metadata needs only their length). Deflated data sets
    are parsed from an inflated copy, which deferred reads could not find, so they are read whole.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = pydicom.dcmread(io.BytesIO(data), force=force, defer_size=DEFER_SIZE)
            syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            if syntax is not None and UID(syntax).is_deflated:
                ds = pydicom.dcmread(io.BytesIO(data), force=force)
    except InvalidDicomError as exc:
        raise InvalidDicom(f"{source}: not a DICOM Part 10 object ({exc})") from exc
    except Exception as exc:
        raise InvalidDicom(f"{source}: unreadable DICOM ({type(exc).__name__}: {exc})") from exc
    _check_framing(ds, source, len(data))
    if len(ds._dict) == 0:
        raise InvalidDicom(f"{source}: no data elements")
    return ds


@dataclass(frozen=True)
class ReceivedObject:
    """An object that passed the checks a success status depends on, not yet described."""

    data: bytes
    dataset: FileDataset
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    source: str

    @cached_property
    def sha256(self) -> str:
        """Computed when first asked for: a receiver that only stores never needs it."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def storage_key(self) -> str:
        return storage_key_for(
            self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid
        )


def inspect(data: bytes, *, source: str = "object") -> ReceivedObject:
    """The checks an object must pass before it is acknowledged: readable, framed, UIDs valid.

    Cheap on purpose (no value conversion): it runs while the sender waits for its status.
    """
    ds = read_dataset(data, source=source)
    if not getattr(ds.file_meta, "TransferSyntaxUID", None):
        raise InvalidDicom(f"{source}: file meta lacks TransferSyntaxUID")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uids = [
            clean_uid(ds.get(keyword), keyword)
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
        ]
        sop_class_uid = clean_uid(
            ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID"), "SOPClassUID"
        )
    return ReceivedObject(
        data=data,
        dataset=ds,
        study_instance_uid=uids[0],
        series_instance_uid=uids[1],
        sop_instance_uid=uids[2],
        sop_class_uid=sop_class_uid,
        source=source,
    )


def _metadata_json(ds: Dataset, prefix: str, sop_instance_uid: str) -> dict[str, Any]:
    """DICOM JSON of ``ds``; an element whose value does not convert is left out and logged.

    Real-world objects carry such values (an IS of "x"); the object is still worth keeping.
    """

    def left_out(tag: int, exc: Exception) -> None:
        log.warning(
            "SOP Instance %s: element %s left out of the metadata (%s)",
            sop_instance_uid,
            Tag(tag),
            exc,
        )

    return dataset_json(ds, prefix, BULK_DATA_THRESHOLD, left_out)


@dataclass(frozen=True, slots=True)
class DescribedObject:
    """An object described already (by an import worker process): its bytes and its record."""

    data: bytes
    record: InstanceRecord

    @property
    def storage_key(self) -> str:
        return self.record.storage_key

    @property
    def sop_instance_uid(self) -> str:
        return self.record.sop_instance_uid

    @property
    def sha256(self) -> str:
        return self.record.sha256


def describe(received: ReceivedObject | DescribedObject) -> InstanceRecord:
    """Everything the index stores about an object; tolerant, never refuses an inspected one."""
    if isinstance(received, DescribedObject):
        return received.record
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _describe(received)


def _describe(received: ReceivedObject) -> InstanceRecord:
    ds = received.dataset
    study_uid = received.study_instance_uid
    series_uid = received.series_instance_uid
    sop_uid = received.sop_instance_uid
    prefix = f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    instance_json = _metadata_json(ds, prefix, sop_uid)
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
        sop_class_uid=received.sop_class_uid,
        instance_number=_int(ds, "InstanceNumber"),
        number_of_frames=_int(ds, "NumberOfFrames") or 1,
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        size=len(received.data),
        sha256=received.sha256,
        instance_json=instance_json,
        series_json=series_json,
    )


__all__ = [
    "UID_PATTERN",
    "DescribedObject",
    "InstanceRecord",
    "ReceivedObject",
    "clean_uid",
    "describe",
    "ensure_part10",
    "inspect",
    "read_dataset",
    "storage_key_for",
]
