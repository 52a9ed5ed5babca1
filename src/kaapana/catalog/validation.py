"""Is a series valid DICOM? Checked once on arrival and kept in ``series_validation``.

``dciodvfy`` (dicom3tools) checks an object against its IOD thoroughly, so it runs where it is
installed, on a sample of the series (first, middle and last instance by position) to stay cheap.
Without it, built-in checks look at what matters most: the identifying type 1 attributes and the
value representation of every value (UI, DA, TM, IS, DS, ... formats, as pydicom validates them).
The completeness checks of the series' geometry come on top in both cases.
"""

import logging
import shutil
import subprocess
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from pydicom import config, dcmread
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import validate_value
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from kaapana.archive.visibility import ProjectScope
from kaapana.catalog.completeness import check_completeness
from kaapana.catalog.lookup import visible_series_row
from kaapana.catalog.slices import Slice, series_slices
from kaapana.db.engine import session_factory, write_transaction
from kaapana.db.models import Series, SeriesValidation, utcnow
from kaapana.errors import NotFound
from kaapana.storage import ObjectStore

log = logging.getLogger(__name__)

# Type 1 in the Patient, General Study, General Series and SOP Common modules of every IOD.
REQUIRED_KEYWORDS: Final = (
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
)
DCIODVFY_TIMEOUT_SECONDS: Final = 120
_DCIODVFY_ERROR: Final = "Error - "
_DCIODVFY_WARNING: Final = "Warning - "
# The VRs whose values are strings with a format of their own (PS3.5 6.2).
_TEXT_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI", "UR"}
)


class ValidationStatusValues(StrEnum):
    ok = "ok"
    warning = "warning"
    error = "error"


class ValidatorValues(StrEnum):
    dciodvfy = "dciodvfy"
    pydicom = "pydicom"


@dataclass(frozen=True, slots=True)
class Findings:
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SeriesValidationResult:
    """The stored verdict on one series."""

    series_instance_uid: str
    status: ValidationStatusValues
    errors: list[str]
    warnings: list[str]
    validator: ValidatorValues
    checked_at: datetime


def sample(slices: Sequence[Slice]) -> list[Slice]:
    """First, middle and last instance (fewer for short series)."""
    picked = {0: slices[0], len(slices) // 2: slices[len(slices) // 2], -1: slices[-1]}
    unique: dict[str, Slice] = {}
    for s in picked.values():
        unique.setdefault(s.sop_instance_uid, s)
    return list(unique.values())


def _unique(messages: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(messages))


def dciodvfy_findings(executable: str, files: Sequence[tuple[str, Path]]) -> Findings:
    """Run ``dciodvfy`` on each (SOP Instance UID, file) and collect its Error/Warning lines."""
    errors: list[str] = []
    found_warnings: list[str] = []
    for sop_instance_uid, path in files:
        completed = subprocess.run(
            [executable, str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=DCIODVFY_TIMEOUT_SECONDS,
            check=False,
        )
        for line in (completed.stderr + completed.stdout).splitlines():
            line = line.strip()
            if line.startswith(_DCIODVFY_ERROR):
                errors.append(f"{line.removeprefix(_DCIODVFY_ERROR)} (instance {sop_instance_uid})")
            elif line.startswith(_DCIODVFY_WARNING):
                found_warnings.append(
                    f"{line.removeprefix(_DCIODVFY_WARNING)} (instance {sop_instance_uid})"
                )
    return Findings(_unique(errors), _unique(found_warnings))


def _strings(value: object) -> list[str]:
    """The values of one element as they are encoded: raw bytes split at backslashes."""
    if isinstance(value, bytes):
        return [v.strip(" \0") for v in value.decode("latin-1").split("\\")]
    values = value if isinstance(value, MultiValue) else [value]
    return [str(getattr(v, "original_string", v)) for v in values if v is not None]


def _value_errors(ds: Dataset) -> Iterator[str]:
    """Every value of a text VR that its VR does not allow, in ``ds`` and its sequences.

    The elements are read raw (``get_item``), so a value is judged as it was written and not
    after pydicom's conversion.
    """
    for tag in list(ds.keys()):
        if tag.is_private:
            continue
        raw = ds.get_item(tag)
        vr = raw.VR or (dictionary_VR(tag) if dictionary_has_tag(tag) else None)
        if vr == "SQ":
            for item in ds[tag].value:
                yield from _value_errors(item)
            continue
        if vr not in _TEXT_VRS:
            continue
        name = keyword_for_tag(tag) or str(tag)
        for value in _strings(raw.value):
            if not value:
                continue
            try:
                validate_value(vr, value, config.RAISE)
            except ValueError as exc:
                yield f"{name} ({vr}): {exc}"


def dataset_findings(ds: Dataset) -> Findings:
    """The built-in checks of one object: required identifiers, then every value's VR."""
    sop_instance_uid = str(ds.get("SOPInstanceUID") or "unknown")
    errors = [
        f"{keyword} is missing or empty (instance {sop_instance_uid})"
        for keyword in REQUIRED_KEYWORDS
        if not str(ds.get(keyword) or "").strip()
    ]
    with warnings.catch_warnings():  # reading a wrong value warns; here it is a finding
        warnings.simplefilter("ignore")
        errors += [f"{problem} (instance {sop_instance_uid})" for problem in _value_errors(ds)]
    return Findings(_unique(errors))


def _read(store: ObjectStore, storage_key: str) -> Dataset:
    with store.open(storage_key) as stream, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(stream, stop_before_pixels=True)


def _status(errors: Sequence[str], found_warnings: Sequence[str]) -> ValidationStatusValues:
    if errors:
        return ValidationStatusValues.error
    if found_warnings:
        return ValidationStatusValues.warning
    return ValidationStatusValues.ok


def _files(store: ObjectStore, picked: Sequence[Slice]) -> list[tuple[str, Path]] | None:
    paths = [store.local_path(s.storage_key) for s in picked]
    if any(path is None for path in paths):
        return None
    return [(s.sop_instance_uid, Path(p)) for s, p in zip(picked, paths, strict=True) if p]


def _findings(
    store: ObjectStore, picked: Sequence[Slice], dciodvfy_path: str
) -> tuple[Findings, ValidatorValues]:
    executable = shutil.which(dciodvfy_path)
    files = _files(store, picked) if executable else None
    if executable and files is not None:
        return dciodvfy_findings(executable, files), ValidatorValues.dciodvfy
    errors: list[str] = []
    for s in picked:
        errors += dataset_findings(_read(store, s.storage_key)).errors
    return Findings(_unique(errors)), ValidatorValues.pydicom


def _result(series_instance_uid: str, row: SeriesValidation) -> SeriesValidationResult:
    return SeriesValidationResult(
        series_instance_uid=series_instance_uid,
        status=ValidationStatusValues(row.status),
        errors=list(row.errors),
        warnings=list(row.warnings),
        validator=ValidatorValues(row.validator),
        checked_at=row.checked_at,
    )


def validate_series(
    *, engine: Engine, store: ObjectStore, series_pk: int, dciodvfy_path: str
) -> SeriesValidationResult:
    """Validate the series now and store the result (replacing an earlier one)."""
    with session_factory(engine)() as session:
        series_instance_uid = session.scalar(
            select(Series.series_instance_uid).where(Series.id == series_pk)
        )
        slices = series_slices(session, series_pk)
    if series_instance_uid is None or not slices:
        raise NotFound(f"series {series_pk} not found or without instances")
    findings, validator = _findings(store, sample(slices), dciodvfy_path)
    errors = list(findings.errors) + list(check_completeness(slices).messages)
    status = _status(errors, findings.warnings)
    with write_transaction(engine) as session:
        row = session.merge(
            SeriesValidation(
                series_pk=series_pk,
                status=status.value,
                errors=errors,
                warnings=list(findings.warnings),
                validator=validator.value,
                checked_at=utcnow(),
            )
        )
        result = _result(series_instance_uid, row)
    log.info("series %s validated by %s: %s", series_instance_uid, validator.value, status.value)
    return result


def stored_validation(session: Session, series: Series) -> SeriesValidationResult | None:
    row = session.get(SeriesValidation, series.id)
    return None if row is None else _result(series.series_instance_uid, row)


def series_validation(
    *,
    engine: Engine,
    store: ObjectStore,
    series_instance_uid: str,
    projects: ProjectScope,
    dciodvfy_path: str,
) -> SeriesValidationResult:
    """The stored validation of a series the caller sees, validated now when there is none."""
    with session_factory(engine)() as session:
        series = visible_series_row(session, series_instance_uid, projects)
        found = stored_validation(session, series)
    if found is not None:
        return found
    return validate_series(
        engine=engine, store=store, series_pk=series.id, dciodvfy_path=dciodvfy_path
    )


__all__ = [
    "REQUIRED_KEYWORDS",
    "Findings",
    "SeriesValidationResult",
    "ValidationStatusValues",
    "ValidatorValues",
    "dataset_findings",
    "dciodvfy_findings",
    "sample",
    "series_validation",
    "stored_validation",
    "validate_series",
]
