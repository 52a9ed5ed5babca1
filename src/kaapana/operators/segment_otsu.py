"""Foreground of an MR (or any grey-scale series) by Otsu's threshold, as DICOM SEG.

MR intensities have no absolute scale, so a fixed threshold like CT's HU cannot work; Otsu's
method picks the threshold that best separates the histogram into two classes per series. The
largest connected component above it, after filling in-plane holes, is the imaged anatomy.
"""

from collections.abc import Sequence
from typing import Final, Literal

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from pydicom import Dataset
from pydicom.sr.codedict import codes
from scipy import ndimage
from skimage.filters import threshold_otsu

from kaapana.errors import InvalidInput
from kaapana.operators.segment_ct import fill_slices
from kaapana.operators.series import SegmentSpec, Volume, build_segmentation, load_volume

__all__ = ["SegmentOtsuParameters", "segment_otsu", "segment_otsu_mask"]

_OPERATOR: Final = "segment-otsu"
_STRUCTURES: Final = {
    "body": codes.SCT.EntireBody,
    "head": codes.SCT.Head,
    "brain": codes.SCT.Brain,
}


class SegmentOtsuParameters(BaseModel):
    """Options of segment-otsu."""

    model_config = ConfigDict(extra="forbid")

    structure: Literal["body", "head", "brain"] = Field(
        default="body", description="Anatomy the foreground is coded as in the SEG."
    )
    modalities: list[str] = Field(
        default_factory=lambda: ["MR"], min_length=1, description="Modalities accepted."
    )
    fill_holes: bool = Field(default=True, description="Fill enclosed dark regions per slice.")
    spacing_tolerance_mm: float = Field(
        default=0.01, gt=0.0, description="Allowed deviation between slice gaps."
    )


def segment_otsu_mask(volume: Volume, parameters: SegmentOtsuParameters) -> npt.NDArray[np.bool_]:
    """Foreground mask ``(slices, rows, columns)`` in the volume's slice order."""
    if float(volume.array.min()) == float(volume.array.max()):
        raise InvalidInput("the series is uniform: Otsu's threshold needs contrast")
    mask = volume.array > threshold_otsu(volume.array)
    if parameters.fill_holes:
        # Before choosing the component: a bright rim (scalp, subcutaneous fat) and the organ
        # inside it are separate components until the dark layer between them is filled.
        mask = fill_slices(mask)
    labels, count = ndimage.label(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def segment_otsu(
    datasets: Sequence[Dataset], parameters: SegmentOtsuParameters | None = None
) -> hd.seg.Segmentation:
    """SEG with one segment, the Otsu foreground of one series of an accepted modality."""
    parameters = parameters or SegmentOtsuParameters()
    volume = load_volume(
        datasets,
        modalities=parameters.modalities,
        spacing_tolerance_mm=parameters.spacing_tolerance_mm,
    )
    spec = SegmentSpec(
        parameters.structure,
        codes.cid7150.AnatomicalStructure,
        _STRUCTURES[parameters.structure],
    )
    return build_segmentation(
        volume.datasets,
        {spec.label: segment_otsu_mask(volume, parameters)},
        [spec],
        operator=_OPERATOR,
        parameters=parameters.model_dump(),
        series_description=f"SEG {volume.datasets[0].get('SeriesDescription', 'MR')}",
    )
