"""The instances of a series in anatomical order, from their stored DICOM JSON.

File order and Instance Number say little about where a slice lies; Image Position (Patient)
projected on the slice normal (the cross product of the Image Orientation (Patient) direction
cosines) does. Instance Number is the fallback for objects without geometry.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaapana.catalog.dicom_json import DicomJson, json_numbers
from kaapana.db.models import Instance


@dataclass(frozen=True, slots=True)
class Slice:
    """One stored instance with what ordering and completeness checks need."""

    sop_instance_uid: str
    storage_key: str
    instance_number: int | None
    position: tuple[float, ...] | None  # ImagePositionPatient
    orientation: tuple[float, ...] | None  # ImageOrientationPatient

    @classmethod
    def from_json(
        cls,
        *,
        sop_instance_uid: str,
        storage_key: str,
        instance_number: int | None,
        metadata: DicomJson,
    ) -> "Slice":
        position = json_numbers(metadata, "ImagePositionPatient")
        orientation = json_numbers(metadata, "ImageOrientationPatient")
        return cls(
            sop_instance_uid=sop_instance_uid,
            storage_key=storage_key,
            instance_number=instance_number,
            position=position if position is not None and len(position) == 3 else None,
            orientation=orientation if orientation is not None and len(orientation) == 6 else None,
        )


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """The unit normal of a slice with direction cosines ``orientation`` (row, then column)."""
    normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
    length = float(np.linalg.norm(normal))
    return normal / length if length > 0 else normal


def has_geometry(slices: Sequence[Slice]) -> bool:
    return bool(slices) and all(
        s.position is not None and s.orientation is not None for s in slices
    )


def distances(slices: Sequence[Slice]) -> list[float]:
    """Each slice's position along the normal of the first slice, in mm (needs geometry)."""
    normal = slice_normal(slices[0].orientation or ())
    return [float(np.dot(s.position or (), normal)) for s in slices]


def ordered(slices: Sequence[Slice]) -> list[Slice]:
    """``slices`` by position along the normal where all have geometry, else by number."""
    if has_geometry(slices):
        along = distances(slices)
        return [s for _, s in sorted(zip(along, slices, strict=True), key=lambda pair: pair[0])]
    return sorted(slices, key=lambda s: (s.instance_number is None, s.instance_number or 0))


def series_slices(session: Session, series_pk: int) -> list[Slice]:
    """The series' instances in anatomical order."""
    rows = session.execute(
        select(
            Instance.sop_instance_uid,
            Instance.storage_key,
            Instance.instance_number,
            Instance.metadata_json,
        )
        .where(Instance.series_pk == series_pk)
        .order_by(Instance.instance_number.nulls_last(), Instance.id)
    ).all()
    return ordered(
        [
            Slice.from_json(
                sop_instance_uid=row.sop_instance_uid,
                storage_key=row.storage_key,
                instance_number=row.instance_number,
                metadata=row.metadata_json or {},
            )
            for row in rows
        ]
    )


def middle(slices: Sequence[Slice]) -> Slice:
    return slices[len(slices) // 2]


__all__ = [
    "Slice",
    "distances",
    "has_geometry",
    "middle",
    "ordered",
    "series_slices",
    "slice_normal",
]
