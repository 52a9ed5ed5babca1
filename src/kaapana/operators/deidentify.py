"""De-identification by DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile.

The action for every attribute comes from Table E.1-1 (``annex_e.json``, generated from the
machine-readable copy in the PyPI package ``idiscore``; see ``scripts/generate_annex_e.py``), with
the columns of the options chosen in :class:`DeidentifyParameters` laid over the profile column.
Every value that replaces an identifier derives from a project secret by HMAC-SHA256, so the same
patient, UID or date gets the same replacement across runs and objects of one project, while
another project (another key) cannot link them.

Pixel data is never decoded or rewritten: burned-in annotations in the pixels are out of scope.
"""

import copy
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from highdicom.sr import CodedConcept
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.tag import BaseTag
from pydicom.uid import UID

from kaapana.errors import InvalidInput

__all__ = [
    "DeidentificationReport",
    "Deidentifier",
    "DeidentifyParameters",
    "ObjectReport",
    "SafePrivateTag",
    "deidentify_files",
]

_PIXEL_DATA: Final = 0x7FE00010
_PSEUDONYM_PREFIX: Final = "KP-"
_DUMMY_TEXT: Final = "ANONYMIZED"
_DUMMY_DATE: Final = "19000101"
_DUMMY_VALUES: Final[dict[str, Any]] = {
    "DA": _DUMMY_DATE,
    "DT": _DUMMY_DATE + "000000",
    "TM": "000000",
    "IS": "0",
    "DS": "0",
    "AS": "000Y",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "FL": 0.0,
    "FD": 0.0,
}
# Where Table E.1-1 allows a choice, keep a Type 2-safe element: empty (Z) or dummy (D).
_CONFORMANT_CHOICE: Final = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "Z"}
_TEXT_VRS: Final = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
# CID 7050 "De-identification Method" code per Table E.1-1 column.
_METHOD_CODES: Final = {
    "basic_profile": codes.cid7050.BasicApplicationConfidentialityProfile,
    "retain_safe_private": codes.cid7050.RetainSafePrivateOption,
    "retain_uid": codes.cid7050.RetainUidsOption,
    "retain_modified_dates": codes.cid7050.RetainLongitudinalTemporalInformationModifiedDatesOption,
    "clean_descriptors": codes.cid7050.CleanDescriptorsOption,
}


class SafePrivateTag(BaseModel):
    """A private attribute known to carry no identity, kept under the Retain Safe Private option.

    Private tags move between blocks, so they are named by group, private creator and the
    element's offset inside the block, as PS3.15 Table E.3.10-1 does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: int = Field(ge=0x0009, le=0xFFFF, description="Odd group number, e.g. 0x0019 = 25.")
    private_creator: str = Field(min_length=1, max_length=64, description="Private Creator value.")
    element_offset: int = Field(ge=0, le=0xFF, description="Element offset within the block.")

    @field_validator("group")
    @classmethod
    def _odd(cls, group: int) -> int:
        if group % 2 == 0:
            raise ValueError(f"'group' must be an odd (private) group, got 0x{group:04X}")
        return group


class DeidentifyParameters(BaseModel):
    """Options of the de-identify operator (PS3.15 E.3)."""

    model_config = ConfigDict(extra="forbid")

    retain_longitudinal_modified_dates: bool = Field(
        default=True,
        description="Shift dates by a per-patient number of days instead of removing them.",
    )
    max_date_shift_days: int = Field(
        default=365, ge=1, le=3650, description="Largest date shift into the past, in days."
    )
    retain_uids: bool = Field(
        default=False, description="Keep the original UIDs instead of remapping them."
    )
    clean_descriptors: bool = Field(
        default=True,
        description="Keep descriptions (e.g. SeriesDescription) with patient identifiers cut out.",
    )
    safe_private_tags: list[SafePrivateTag] = Field(
        default_factory=list, description="Private attributes to keep; all others are removed."
    )


@dataclass
class ObjectReport:
    """What happened to one object, by attribute path; never any original value."""

    sop_instance_uid: str
    output: str = ""
    removed: list[str] = field(default_factory=list)
    emptied: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    shifted: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)


@dataclass
class DeidentificationReport:
    parameters: DeidentifyParameters
    objects: list[ObjectReport] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "parameters": self.parameters.model_dump(),
                "objects": [vars(item) for item in self.objects],
            },
            indent=1,
        )


@cache
def _profiles() -> dict[str, dict[str, Any]]:
    """Table E.1-1 by column: each option's ``name``, ``code`` and ``rules`` (tag -> action)."""
    text = files("kaapana.operators").joinpath("annex_e.json").read_text()
    profiles: dict[str, dict[str, Any]] = json.loads(text)["profiles"]
    return profiles


def _matches(pattern: str, tag: int) -> bool:
    hexed = f"{tag:08x}"
    return all(p in ("x", h) for p, h in zip(pattern, hexed, strict=True))


def _label(elem: DataElement, path: str) -> str:
    tag = BaseTag(elem.tag)
    name = elem.keyword or ("Private" if tag.is_private else "Unknown")
    return f"{path}{name} ({tag.group:04X},{tag.element:04X})"


class Deidentifier:
    """Applies the profile with the chosen options under one project ``key``."""

    def __init__(self, key: bytes, parameters: DeidentifyParameters | None = None) -> None:
        if len(key) < 16:
            raise InvalidInput(f"'key' must be at least 16 bytes, got {len(key)}")
        self._key = key
        self.parameters = parameters or DeidentifyParameters()
        self.options = ["basic_profile"]
        if self.parameters.safe_private_tags:
            self.options.append("retain_safe_private")
        if self.parameters.retain_uids:
            self.options.append("retain_uid")
        if self.parameters.retain_longitudinal_modified_dates:
            self.options.append("retain_modified_dates")
        if self.parameters.clean_descriptors:
            self.options.append("clean_descriptors")
        profiles = _profiles()
        self._actions: dict[str, str] = {}
        self._repeating: dict[str, str] = {}
        for option in self.options:
            for key_, action in profiles[option]["rules"].items():
                target = self._repeating if "x" in key_ else self._actions
                target[key_] = action
        self._safe_private = {
            (item.group, item.private_creator, item.element_offset)
            for item in self.parameters.safe_private_tags
        }

    def action(self, ds: Dataset, elem: DataElement) -> str | None:
        """The Table E.1-1 action code for ``elem`` of ``ds`` under the chosen options
        (``None`` for attributes the table does not list, which are kept)."""
        tag = BaseTag(elem.tag)
        if tag.is_private:
            if tag.is_private_creator:
                creators = {(group, creator) for group, creator, _ in self._safe_private}
                return "K" if (tag.group, str(elem.value)) in creators else "X"
            creator_tag = (tag.group << 16) | (tag.element >> 8)
            creator = ds.get(creator_tag)
            key = (tag.group, str(creator.value) if creator else "", tag.element & 0xFF)
            return "K" if key in self._safe_private else "X"
        action = self._actions.get(f"{tag:08x}")
        if action is None:
            action = next((a for p, a in self._repeating.items() if _matches(p, tag)), None)
        if action is None and elem.VR in ("DA", "DT"):
            # Dates the table does not list are treated like listed ones: never kept as is.
            action = "C" if self.parameters.retain_longitudinal_modified_dates else "X"
        return action

    def _digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._key, f"{purpose}\x1f{value}".encode(), hashlib.sha256).digest()

    def pseudonym(self, patient_id: str) -> str:
        """The stable replacement for a PatientID (and PatientName) in this project."""
        return _PSEUDONYM_PREFIX + self._digest("patient", patient_id).hex()[:16].upper()

    def date_shift_days(self, patient_id: str) -> int:
        """Days every date of this patient moves into the past: at least one, so no original
        date survives, and the same for all of the patient's objects."""
        digest = int.from_bytes(self._digest("date-shift", patient_id)[:8], "big")
        return 1 + digest % self.parameters.max_date_shift_days

    def remap_uid(self, uid: str) -> str:
        """``2.25.<int>`` from a version-8 (custom) UUID built from the HMAC of ``uid``."""
        raw = bytearray(self._digest("uid", uid)[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80
        raw[8] = (raw[8] & 0x3F) | 0x80
        return f"2.25.{int.from_bytes(raw, 'big')}"

    def deidentify(self, source: Dataset) -> tuple[Dataset, ObjectReport]:
        """Return a de-identified copy of ``source`` and what was changed in it."""
        ds = copy.deepcopy(source)
        patient_id = str(source.get("PatientID", "") or source.get("PatientName", ""))
        session = _Session(self, patient_id, _identifying_tokens(source))
        session.walk(ds, "")
        pseudonym = self.pseudonym(patient_id)
        ds.PatientID = pseudonym
        ds.PatientName = pseudonym
        session.report.replaced += ["PatientID (0010,0020)", "PatientName (0010,0010)"]
        self._mark(ds)
        ds.file_meta = self._file_meta(source, ds)
        session.report.sop_instance_uid = str(ds.get("SOPInstanceUID", ""))
        return ds, session.report

    def _mark(self, ds: Dataset) -> None:
        ds.PatientIdentityRemoved = "YES"
        methods = [_METHOD_CODES[option] for option in self.options]
        ds.DeidentificationMethod = [method.meaning for method in methods]
        ds.DeidentificationMethodCodeSequence = Sequence(
            [CodedConcept(m.value, m.scheme_designator, m.meaning) for m in methods]
        )
        modified = self.parameters.retain_longitudinal_modified_dates
        ds.LongitudinalTemporalInformationModified = "MODIFIED" if modified else "REMOVED"

    def _file_meta(self, source: Dataset, ds: Dataset) -> FileMetaDataset:
        meta = FileMetaDataset()
        original = getattr(source, "file_meta", FileMetaDataset())
        sop_class_uid = ds.get("SOPClassUID", original.get("MediaStorageSOPClassUID"))
        meta.MediaStorageSOPClassUID = sop_class_uid
        meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID")
        transfer_syntax = original.get("TransferSyntaxUID")
        if transfer_syntax is None:
            raise InvalidInput("the dataset has no TransferSyntaxUID in its file meta")
        meta.TransferSyntaxUID = UID(transfer_syntax)
        return meta


def _identifying_tokens(ds: Dataset) -> list[str]:
    """Values a free-text descriptor must not repeat: names, IDs and dates of the object."""
    tokens: set[str] = set()
    for elem in ds.iterall():
        if elem.VR == "PN" and elem.value:
            for name in elem.value if elem.VM > 1 else [elem.value]:
                tokens.update(part for part in re.split(r"[\^=]", str(name)) if len(part) > 2)
        elif (elem.keyword.endswith(("ID", "IDs", "Number")) and elem.VR in ("LO", "SH")) or (
            elem.VR in ("DA", "DT")
        ):
            values = elem.value if elem.VM > 1 else [elem.value]
            tokens.update(str(value) for value in values if value and len(str(value)) > 2)
    return sorted(tokens, key=len, reverse=True)


class _Session:
    """State of one object's walk: its patient, its identifying tokens and the report."""

    def __init__(self, owner: Deidentifier, patient_id: str, tokens: list[str]) -> None:
        self.owner = owner
        self.shift = dt.timedelta(days=owner.date_shift_days(patient_id))
        self.scrub = (
            re.compile(
                r"\b(?:" + "|".join(re.escape(token) for token in tokens) + r")\b", re.IGNORECASE
            )
            if tokens
            else None
        )
        self.report = ObjectReport(sop_instance_uid="")

    def walk(self, ds: Dataset, path: str) -> None:
        for elem in list(ds):
            if elem.tag == _PIXEL_DATA:
                continue
            if BaseTag(elem.tag).element == 0:
                # Group lengths are retired and would be wrong once attributes are removed.
                del ds[elem.tag]
                continue
            action = self.owner.action(ds, elem) or "K"
            label = _label(elem, path)
            if action == "X/Z/U*" and elem.VR == "UI":
                action = "U"
            action = _CONFORMANT_CHOICE.get(action, action)
            if action == "X":
                del ds[elem.tag]
                self.report.removed.append(label)
            elif elem.VR == "SQ" and action != "Z":
                for index, item in enumerate(elem.value):
                    self.walk(item, f"{path}{elem.keyword or 'Private'}[{index}].")
            elif action == "Z":
                elem.value = Sequence() if elem.VR == "SQ" else None
                self.report.emptied.append(label)
            elif action == "U":
                self._remap(elem, label)
            elif action == "D":
                self._dummy(elem, label)
            elif action == "C":
                self._clean(elem, label)

    def _remap(self, elem: DataElement, label: str) -> None:
        if elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            remapped = [self.owner.remap_uid(str(value)) for value in values]
            elem.value = remapped if elem.VM > 1 else remapped[0]
            self.report.replaced.append(label)

    def _dummy(self, elem: DataElement, label: str) -> None:
        if elem.VR == "UI":
            self._remap(elem, label)
            return
        if elem.VR in _TEXT_VRS:
            elem.value = _DUMMY_TEXT
        else:
            elem.value = _DUMMY_VALUES.get(elem.VR)
        self.report.replaced.append(label)

    def _clean(self, elem: DataElement, label: str) -> None:
        if elem.VR in ("DA", "DT"):
            values = elem.value if elem.VM > 1 else [elem.value]
            shifted = [self._shift(str(value), elem.VR) for value in values if value]
            if None in shifted:
                elem.value = None
                self.report.emptied.append(label)
            elif shifted:
                elem.value = shifted if len(shifted) > 1 else shifted[0]
                self.report.shifted.append(label)
        elif elem.VR in _TEXT_VRS and elem.value and self.scrub is not None:
            values = elem.value if elem.VM > 1 else [elem.value]
            clean = [self.scrub.sub("", str(value)).strip() for value in values]
            elem.value = clean if elem.VM > 1 else clean[0]
            self.report.cleaned.append(label)

    def _shift(self, value: str, vr: str) -> str | None:
        """Whole-day shift of a DA or of the date part of a DT (times of day stay); values
        without a full date cannot be shifted exactly and become empty."""
        value = value.strip()
        if not re.fullmatch(r"\d{8}" if vr == "DA" else r"\d{8}.*", value):
            return None
        try:
            day = dt.datetime.strptime(value[:8], "%Y%m%d").date()
        except ValueError:
            return None
        return (day - self.shift).strftime("%Y%m%d") + value[8:]


def deidentify_files(
    paths: Iterable[Path], out_dir: Path, *, key: bytes, parameters: DeidentifyParameters
) -> DeidentificationReport:
    """De-identify Part 10 files into ``out_dir/<SOPInstanceUID>.dcm``, keeping each file's
    transfer syntax so the pixel data bytes stay identical, and write ``report.json`` there."""
    deidentifier = Deidentifier(key, parameters)
    report = DeidentificationReport(parameters=parameters)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        try:
            source = dcmread(path)
        except Exception as exc:
            raise InvalidInput(f"'{path}' is not a readable DICOM file: {exc}") from exc
        ds, item = deidentifier.deidentify(source)
        target = out_dir / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(target, enforce_file_format=True)
        item.output = target.name
        report.objects.append(item)
    (out_dir / "report.json").write_text(report.to_json())
    return report
