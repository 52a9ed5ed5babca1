"""Body, lungs and bones of a CT by image processing, as DICOM SEG.

No trained model is needed: Hounsfield units separate air, soft tissue and bone well enough for
these three structures. The body is the largest component above a soft-tissue threshold with
its in-plane holes filled; lungs are the (at most two) large air-filled components inside the
body that do not touch the image's in-plane border (the top and bottom slices may cut through
the lungs, as scan ranges often do); bones are the components above a bone threshold inside the
body, without specks.
"""

from collections.abc import Sequence
from typing import Final

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from pydicom import Dataset
from pydicom.sr.codedict import codes
from scipy import ndimage

from kaapana.operators.series import SegmentSpec, Volume, build_segmentation, load_volume

__all__ = [
    "CT_SEGMENTS",
    "SegmentCTParameters",
    "bounding_box",
    "fill_slices",
    "segment_ct",
    "segment_ct_masks",
]

CT_SEGMENTS: Final = (
    SegmentSpec("body", codes.cid7150.AnatomicalStructure, codes.SCT.EntireBody),
    SegmentSpec("lungs", codes.cid7150.AnatomicalStructure, codes.SCT.Lung),
    SegmentSpec("bones", codes.cid7150.AnatomicalStructure, codes.SCT.Bone),
)
_OPERATOR: Final = "segment-ct"
_MAX_LUNGS: Final = 2
_IN_PLANE: Final = np.stack(
    [np.zeros((3, 3), bool), ndimage.generate_binary_structure(2, 1), np.zeros((3, 3), bool)]
)


class SegmentCTParameters(BaseModel):
    """Thresholds and size limits of segment-ct."""

    model_config = ConfigDict(extra="forbid")

    body_threshold_hu: float = Field(
        default=-500.0, ge=-1000.0, le=0.0, description="Voxels above this HU may be body."
    )
    lung_threshold_hu: float = Field(
        default=-400.0, ge=-1000.0, le=0.0, description="Air inside the body below this HU."
    )
    bone_threshold_hu: float = Field(
        default=200.0, ge=100.0, le=1500.0, description="Voxels above this HU may be bone."
    )
    min_lung_volume_ml: float = Field(
        default=20.0, gt=0.0, description="Smaller air pockets (bowel gas, noise) are not lung."
    )
    min_bone_volume_ml: float = Field(
        default=0.05, ge=0.0, description="Smaller bright specks (noise) are dropped."
    )
    spacing_tolerance_mm: float = Field(
        default=0.01, gt=0.0, description="Allowed deviation between slice gaps."
    )


def _sizes(
    labels: npt.NDArray[np.int32], count: int, mask: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Voxels per component, counted over the labelled voxels only (a fraction of the volume)."""
    sizes = np.bincount(labels[mask], minlength=count + 1)
    sizes[0] = 0
    return sizes


def _select(
    labels: npt.NDArray[np.int32], sizes: npt.NDArray[np.int64], keep: int, min_voxels: float
) -> npt.NDArray[np.bool_]:
    """The ``keep`` largest components of at least ``min_voxels``, by one table lookup (much
    faster than one comparison per component on a 512x512x200 volume)."""
    chosen = np.argsort(sizes)[::-1][:keep]
    lookup = np.zeros(sizes.size, dtype=np.bool_)
    lookup[chosen[(sizes[chosen] >= min_voxels) & (sizes[chosen] > 0)]] = True
    return lookup[labels]


def bounding_box(mask: npt.NDArray[np.bool_]) -> tuple[slice, ...] | None:
    """The smallest box holding every set voxel, or None for an empty mask. Two projections
    are a fraction of the cost of ``ndimage.find_objects``, which visits every voxel as a
    label."""
    in_plane = mask.any(axis=0)
    rows, columns = np.flatnonzero(in_plane.any(axis=1)), np.flatnonzero(in_plane.any(axis=0))
    if rows.size == 0:
        return None
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    return (
        slice(int(slices[0]), int(slices[-1]) + 1),
        slice(int(rows[0]), int(rows[-1]) + 1),
        slice(int(columns[0]), int(columns[-1]) + 1),
    )


def fill_slices(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Fill holes per axial slice: a 3-D fill would leave the lungs open where the airways or
    the scan range connect them to the outside. One labelling of the background with in-plane
    connectivity does all slices at once, many times faster than a fill per slice. Only the
    mask's bounding box is labelled: background outside it is outside in every slice, and
    background on the box's rim touches that outside."""
    filled = np.zeros_like(mask)
    box = bounding_box(mask)
    if box is None:
        return filled
    labels, count = ndimage.label(~mask[box], structure=_IN_PLANE)
    outside = np.zeros(count + 1, dtype=np.bool_)
    for edge in _edges(labels):
        outside[np.unique(edge)] = True
    outside[0] = False  # label 0 is the mask itself
    filled[box] = ~outside[labels]
    return filled


def _edges(labels: npt.NDArray[np.int32]) -> tuple[npt.NDArray[np.int32], ...]:
    """The in-plane border of every slice."""
    return labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]


def _body(hu: npt.NDArray[np.float32], parameters: SegmentCTParameters) -> npt.NDArray[np.bool_]:
    candidates = hu > parameters.body_threshold_hu
    box = bounding_box(candidates)
    if box is None:
        return candidates
    # The largest component lies in the candidates' box, and so does its filled form.
    inside = candidates[box]
    labels, count = ndimage.label(inside)
    if count > 1:
        inside = _select(labels, _sizes(labels, count, inside), 1, 1)
    body = np.zeros_like(candidates)
    body[box] = fill_slices(inside)
    return body


def _lungs(
    hu: npt.NDArray[np.float32],
    body: npt.NDArray[np.bool_],
    volume: Volume,
    parameters: SegmentCTParameters,
) -> npt.NDArray[np.bool_]:
    air = body & (hu < parameters.lung_threshold_hu)
    labels, count = ndimage.label(air)
    sizes = _sizes(labels, count, air)
    for edge in _edges(labels):
        sizes[np.unique(edge)] = 0
    min_voxels = parameters.min_lung_volume_ml / volume.voxel_volume_ml
    return fill_slices(_select(labels, sizes, _MAX_LUNGS, min_voxels))


def _bones(
    hu: npt.NDArray[np.float32],
    body: npt.NDArray[np.bool_],
    volume: Volume,
    parameters: SegmentCTParameters,
) -> npt.NDArray[np.bool_]:
    bright = body & (hu > parameters.bone_threshold_hu)
    labels, count = ndimage.label(bright)
    lookup = _sizes(labels, count, bright) >= parameters.min_bone_volume_ml / volume.voxel_volume_ml
    lookup[0] = False
    return lookup[labels]


def segment_ct_masks(
    volume: Volume, parameters: SegmentCTParameters
) -> dict[str, npt.NDArray[np.bool_]]:
    """Masks ``(slices, rows, columns)`` in the volume's slice order, keyed by segment label."""
    body = _body(volume.array, parameters)
    lungs, bones = np.zeros_like(body), np.zeros_like(body)
    box = bounding_box(body)
    if box is not None:
        # Lungs and bones lie inside the body: working in its bounding box halves the work.
        hu, inside = volume.array[box], body[box]
        lungs[box] = _lungs(hu, inside, volume, parameters)
        bones[box] = _bones(hu, inside, volume, parameters)
    return {"body": body, "lungs": lungs, "bones": bones}


def segment_ct(
    datasets: Sequence[Dataset], parameters: SegmentCTParameters | None = None
) -> hd.seg.Segmentation:
    """SEG with body, lungs and bones of one CT series (any instance order); an MR or a
    series with a gap or uneven slice spacing is refused with :class:`InvalidInput`."""
    parameters = parameters or SegmentCTParameters()
    volume = load_volume(
        datasets, modalities=("CT",), spacing_tolerance_mm=parameters.spacing_tolerance_mm
    )
    masks = segment_ct_masks(volume, parameters)
    return build_segmentation(
        volume.datasets,
        masks,
        CT_SEGMENTS,
        operator=_OPERATOR,
        parameters=parameters.model_dump(),
        series_description=f"SEG {volume.datasets[0].get('SeriesDescription', 'CT')}",
    )
