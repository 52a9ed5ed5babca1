"""Is a series whole? Gaps and inconsistencies visible in its instances' stored geometry.

Checked from the DICOM JSON alone: gaps in Instance Number, slice spacing that deviates from the
median (by more than 10 % and more than 0.1 mm), orientations that differ between instances and
slices at the same position. Single objects and objects without geometry pass what they cannot
be checked for.
"""

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from kaapana.catalog.slices import Slice, distances, has_geometry, ordered

SPACING_TOLERANCE: Final = 0.10  # relative to the median spacing
SPACING_MIN_MM: Final = 0.1
SAME_POSITION_MM: Final = 1e-3
ORIENTATION_DECIMALS: Final = 4
_LISTED: Final = 10
# How each finding starts: the catalog tells completeness findings among a validation's errors.
MISSING_NUMBERS: Final = "missing instance numbers"
MIXED_ORIENTATION: Final = "mixed orientation"
DUPLICATE_POSITIONS: Final = "duplicate slice positions"
SPACING_DEVIATES: Final = "slice spacing deviates"
FINDINGS: Final = (MISSING_NUMBERS, MIXED_ORIENTATION, DUPLICATE_POSITIONS, SPACING_DEVIATES)


@dataclass(frozen=True, slots=True)
class Completeness:
    """What the checks found; ``complete`` is True when they found nothing."""

    messages: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.messages


def _listed(values: Sequence[object]) -> str:
    shown = ", ".join(str(v) for v in values[:_LISTED])
    return shown + (f" and {len(values) - _LISTED} more" if len(values) > _LISTED else "")


def _instance_number_gaps(slices: Sequence[Slice]) -> list[str]:
    numbers = sorted(s.instance_number for s in slices if s.instance_number is not None)
    if len(numbers) < 2:
        return []
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    return [f"{MISSING_NUMBERS}: {_listed(missing)}"] if missing else []


def _mixed_orientation(slices: Sequence[Slice]) -> list[str]:
    found = {
        tuple(round(v, ORIENTATION_DECIMALS) for v in s.orientation)
        for s in slices
        if s.orientation is not None
    }
    if len(found) > 1:
        return [f"{MIXED_ORIENTATION}: {len(found)} different ImageOrientationPatient values"]
    return []


def _position_checks(slices: Sequence[Slice]) -> list[str]:
    along = sorted(distances(slices))
    steps = [b - a for a, b in itertools.pairwise(along)]
    duplicates = sorted(
        {round(a, 3) for a, step in zip(along, steps, strict=False) if step < SAME_POSITION_MM}
    )
    messages = []
    if duplicates:
        messages.append(f"{DUPLICATE_POSITIONS} at {_listed(duplicates)} mm")
    spacings = [
        (a, step) for a, step in zip(along, steps, strict=False) if step >= SAME_POSITION_MM
    ]
    if len(spacings) < 2:
        return messages
    median = statistics.median(step for _, step in spacings)
    gaps = [
        f"{step:.2f} mm after {start:.2f} mm"
        for start, step in spacings
        if abs(step - median) > max(SPACING_TOLERANCE * median, SPACING_MIN_MM)
    ]
    if gaps:
        messages.append(f"{SPACING_DEVIATES} from the median {median:.2f} mm: {_listed(gaps)}")
    return messages


def check_completeness(slices: Sequence[Slice]) -> Completeness:
    """Run every check over the instances of one series (in any order)."""
    orientation = _mixed_orientation(slices)
    messages = _instance_number_gaps(slices) + orientation
    if not orientation and has_geometry(slices) and len(slices) > 1:
        messages += _position_checks(ordered(slices))
    return Completeness(tuple(messages))


def is_completeness_finding(message: str) -> bool:
    """Whether a validation error is one of the findings above (not the validator's)."""
    return message.startswith(FINDINGS)


__all__ = ["FINDINGS", "Completeness", "check_completeness", "is_completeness_finding"]
