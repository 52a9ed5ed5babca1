"""Train/validation/test splits by patient, stratified by an attribute, reproducible by seed.

Patients, not series, are split: every series of a patient lands in the same part, so no
patient's images are in training and test at once. A patient's stratum is the set of values
the attribute has over its series (``CT``, or ``CT+MR`` for a patient with both), so strata are
kept in proportion in every part. The parts' sizes are fractions of the patients, rounded, at
least one patient each for a fraction above zero; each stratum's share follows by largest
remainder, so every stratum is split as evenly as whole patients allow.
"""

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydicom.datadict import tag_for_keyword

from kaapana.catalog.tags import check_tag
from kaapana.errors import InvalidInput

PATIENT_ID_TAG = "00100020"
TAG_STRATA = "tag:"
"""``stratify_by`` of this form stratifies by the series' tags ``<prefix>:<value>``."""


class SplitValues(StrEnum):
    train = "train"
    validation = "validation"
    test = "test"


class TrainTestSplitParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_fraction: float = Field(0.2, gt=0, lt=1, description="Share of patients in test.")
    validation_fraction: float = Field(
        0.0, ge=0, lt=1, description="Share of patients in validation; 0: no validation part."
    )
    stratify_by: str | None = Field(
        None,
        max_length=64,
        description="DICOM keyword or tag (`Modality`, `BodyPartExamined`, `00180015`), or "
        "`tag:<prefix>` for the series' tags `<prefix>:<value>`, whose values over a patient's "
        "series are its stratum; unset: no stratification.",
    )
    seed: int = Field(0, description="Seed of the shuffle: the same seed, the same split.")
    tag_prefix: str = Field(
        "split",
        min_length=1,
        max_length=32,
        description="Series are tagged `<prefix>:train`, `<prefix>:validation`, "
        "`<prefix>:test` (and lose the prefix's other parts).",
    )

    @field_validator("stratify_by")
    @classmethod
    def _attribute(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(TAG_STRATA):
            prefix = value.removeprefix(TAG_STRATA).strip()
            if not prefix:
                raise ValueError("'tag:' needs a tag prefix, e.g. tag:diagnosis")
            return TAG_STRATA + prefix
        return attribute_tag(value)

    @field_validator("tag_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            return check_tag(f"{value}:{SplitValues.validation}").rsplit(":", 1)[0]
        except InvalidInput as exc:
            raise ValueError(exc.detail) from exc

    @model_validator(mode="after")
    def _fractions(self) -> Self:
        if self.test_fraction + self.validation_fraction >= 1:
            raise ValueError(
                f"test_fraction {self.test_fraction} and validation_fraction "
                f"{self.validation_fraction} leave nothing for training"
            )
        return self

    def tag(self, split: SplitValues) -> str:
        return f"{self.tag_prefix}:{split.value}"


def attribute_tag(value: str) -> str:
    """A keyword or an 8-digit hex tag as the tag of DICOM JSON (``00080060``)."""
    text = value.strip().replace("(", "").replace(")", "").replace(",", "")
    if len(text) == 8 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.upper()
    tag = tag_for_keyword(value.strip())
    if tag is None:
        raise ValueError(f"{value!r} is neither a DICOM keyword nor a tag like 00180015")
    return f"{tag:08X}"


def json_value(metadata: Mapping[str, Any], tag: str) -> str:
    """An attribute of series-level DICOM JSON as text (values joined by a backslash)."""
    element = metadata.get(tag) or {}
    values = element.get("Value") or []
    texts = [str(v.get("Alphabetic", "")) if isinstance(v, dict) else str(v) for v in values]
    return "\\".join(texts)


@dataclass(frozen=True, slots=True)
class SplitItem:
    series_instance_uid: str
    patient_id: str
    stratum: str


@dataclass(frozen=True, slots=True)
class Split:
    parts: dict[str, SplitValues]
    """The part of each series, by Series Instance UID."""
    strata: dict[str, str]
    """The stratum of each patient, by PatientID."""

    def counts(self, items: Sequence[SplitItem]) -> dict[str, dict[str, dict[str, int]]]:
        """Patients and series per stratum and part."""
        table: dict[str, dict[str, dict[str, int]]] = {}
        patients: dict[tuple[str, str], set[str]] = defaultdict(set)
        for item in items:
            stratum = self.strata[item.patient_id]
            part = self.parts[item.series_instance_uid].value
            row = table.setdefault(stratum, {}).setdefault(part, {"patients": 0, "series": 0})
            row["series"] += 1
            patients[stratum, part].add(item.patient_id)
        for (stratum, part), members in patients.items():
            table[stratum][part]["patients"] = len(members)
        return table


def split_items(
    series: Sequence[tuple[str, Mapping[str, Any], Sequence[str]]], stratify_by: str | None
) -> list[SplitItem]:
    """SplitItems of (Series Instance UID, series-level DICOM JSON, tags); a series without
    PatientID is refused, as it cannot be grouped by patient."""
    items = []
    for uid, metadata, tags in series:
        patient_id = json_value(metadata, PATIENT_ID_TAG)
        if not patient_id:
            raise InvalidInput(f"series {uid} has no PatientID: patients cannot be kept together")
        stratum = ""
        if stratify_by and stratify_by.startswith(TAG_STRATA):
            prefix = stratify_by.removeprefix(TAG_STRATA) + ":"
            stratum = "+".join(sorted(t.removeprefix(prefix) for t in tags if t.startswith(prefix)))
        elif stratify_by:
            stratum = json_value(metadata, stratify_by)
        items.append(SplitItem(uid, patient_id, stratum))
    return items


def _patient_strata(items: Sequence[SplitItem]) -> dict[str, str]:
    values: dict[str, set[str]] = defaultdict(set)
    for item in items:
        values[item.patient_id].add(item.stratum or "(none)")
    return {patient: "+".join(sorted(found)) for patient, found in values.items()}


def _totals(patients: int, parameters: TrainTestSplitParameters) -> dict[SplitValues, int]:
    wanted = {
        SplitValues.test: parameters.test_fraction,
        SplitValues.validation: parameters.validation_fraction,
    }
    totals = {part: max(1, round(patients * f)) if f > 0 else 0 for part, f in wanted.items()}
    if sum(totals.values()) >= patients:
        raise InvalidInput(
            f"{patients} patients are too few for test_fraction {parameters.test_fraction} and "
            f"validation_fraction {parameters.validation_fraction}: at least one must train"
        )
    return totals


def split_patients(items: Sequence[SplitItem], parameters: TrainTestSplitParameters) -> Split:
    """Assign every series to a part, by patient and stratum (see the module docstring)."""
    strata = _patient_strata(items)
    rng = random.Random(parameters.seed)
    members: dict[str, list[str]] = defaultdict(list)
    for patient in sorted(strata):
        members[strata[patient]].append(patient)
    order = sorted(members)
    for stratum in order:
        rng.shuffle(members[stratum])
    tie_break = {stratum: rng.random() for stratum in order}
    used = dict.fromkeys(order, 0)
    shares: dict[str, dict[SplitValues, int]] = {stratum: {} for stratum in order}
    for part, total in _totals(len(strata), parameters).items():
        ideal = {s: len(members[s]) * total / len(strata) for s in order}
        share = {s: math.floor(ideal[s]) for s in order}
        left = total - sum(share.values())
        by_remainder = sorted(order, key=lambda s: (share[s] - ideal[s], tie_break[s]))
        while left:
            for stratum in by_remainder:
                if left and used[stratum] + share[stratum] < len(members[stratum]):
                    share[stratum] += 1
                    left -= 1
        for stratum in order:
            shares[stratum][part] = share[stratum]
            used[stratum] += share[stratum]
    part_of: dict[str, SplitValues] = {}
    for stratum in order:
        queue = list(members[stratum])
        for part in (SplitValues.test, SplitValues.validation):
            for patient in queue[: shares[stratum].get(part, 0)]:
                part_of[patient] = part
            queue = queue[shares[stratum].get(part, 0) :]
        for patient in queue:
            part_of[patient] = SplitValues.train
    return Split(
        parts={item.series_instance_uid: part_of[item.patient_id] for item in items},
        strata=strata,
    )


__all__ = [
    "Split",
    "SplitItem",
    "SplitValues",
    "TrainTestSplitParameters",
    "attribute_tag",
    "json_value",
    "split_items",
    "split_patients",
]
