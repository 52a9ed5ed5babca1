"""DICOM series to NIfTI with dcm2niix, and DICOM SEG to and from NIfTI label maps.

Images go through dcm2niix, the reference converter, which also writes the BIDS JSON sidecar.
Label maps are written on exactly the voxel grid and affine of the dcm2niix image of the SEG's
source series, so they overlay in every viewer; segment numbers are the label values and a
``labels.json`` keeps what each segment is (label and codes) so that the way back to SEG
(:func:`nifti_to_seg`, also used by import-nifti) restores the same segments. Segments that
overlap (e.g. lungs inside body) cannot share one label map: the NIfTI then has a fourth axis
with one binary volume per segment.
"""

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import dcm2niix
import highdicom as hd
import nibabel as nib
import numpy as np
import numpy.typing as npt
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform
from pydantic import BaseModel, ConfigDict, Field
from pydicom import Dataset

from kaapana.errors import InvalidInput
from kaapana.operators.series import (
    SegmentSpec,
    build_segmentation,
    dicom_affine,
    segment_masks,
    sort_series,
)

__all__ = [
    "ConvertToNiftiParameters",
    "NiftiImage",
    "NiftiLabels",
    "convert_series",
    "nifti_to_seg",
    "seg_to_nifti",
    "specs_from_labels_file",
]

_AFFINE_TOLERANCE_MM: Final = 1e-2
LABELS_FILE: Final = "labels.json"


class ConvertToNiftiParameters(BaseModel):
    """Options of convert-to-nifti."""

    model_config = ConfigDict(extra="forbid")

    compress: bool = Field(default=True, description="Write .nii.gz instead of .nii.")
    filename: str = Field(
        default="image",
        pattern=r"^[A-Za-z0-9_.-]+$",
        max_length=64,
        description="Base name of the NIfTI, its JSON sidecar and the label map.",
    )
    timeout_seconds: float = Field(default=600.0, gt=0, description="Limit for one dcm2niix run.")


@dataclass(frozen=True, slots=True)
class NiftiImage:
    image: Path
    sidecar: Path


@dataclass(frozen=True, slots=True)
class NiftiLabels:
    label_map: Path
    labels: Path


def convert_series(
    paths: Sequence[Path], out_dir: Path, parameters: ConvertToNiftiParameters | None = None
) -> NiftiImage:
    """One DICOM series (its Part 10 files) to one NIfTI plus BIDS sidecar in ``out_dir``."""
    parameters = parameters or ConvertToNiftiParameters()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kaapana-dcm2niix-") as temp:
        # dcm2niix converts folders: give it one that holds exactly this series.
        source, target = Path(temp) / "in", Path(temp) / "out"
        source.mkdir()
        target.mkdir()
        for index, path in enumerate(paths):
            (source / f"{index:06d}.dcm").symlink_to(Path(path).resolve())
        command = [
            dcm2niix.bin,
            "-z", "y" if parameters.compress else "n",
            "-b", "y",
            "-f", parameters.filename,
            "-o", str(target),
            str(source),
        ]  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=parameters.timeout_seconds
        )
        images = sorted(target.glob("*.nii*"))
        if result.returncode != 0 or len(images) != 1:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise InvalidInput(
                f"dcm2niix made {len(images)} NIfTI files from {len(paths)} instances "
                f"(exit {result.returncode}); one series must give one image: {detail}"
            )
        image = out_dir / images[0].name
        sidecar = out_dir / f"{parameters.filename}.json"
        shutil.move(images[0], image)
        shutil.move(target / f"{parameters.filename}.json", sidecar)
    return NiftiImage(image=image, sidecar=sidecar)


def _reorient(
    data: npt.NDArray[Any], affine: npt.NDArray[np.float64], target: npt.NDArray[np.float64]
) -> npt.NDArray[Any]:
    """Flip and permute the first three axes of ``data`` from grid ``affine`` onto grid
    ``target``; refuse grids that are not the same voxels."""
    transform = ornt_transform(io_orientation(affine), io_orientation(target))
    moved = apply_orientation(data, transform)
    moved_affine = affine @ inv_ornt_aff(transform, data.shape[:3])
    if not np.allclose(moved_affine, target, atol=_AFFINE_TOLERANCE_MM):
        raise InvalidInput(
            "the label map's voxel grid does not match the image series "
            f"(affine {np.round(moved_affine, 3).tolist()} vs {np.round(target, 3).tolist()})"
        )
    return moved


def _segment_entry(segmentation: hd.seg.Segmentation, number: int) -> dict[str, Any]:
    item = segmentation.get_segment_description(number)
    spec = SegmentSpec(
        str(item.segment_label), item.segmented_property_category, item.segmented_property_type
    )
    return {"number": number, **spec.to_json()}


def seg_to_nifti(
    seg: Dataset,
    image: Sequence[Dataset],
    out_dir: Path,
    *,
    reference: Path | None = None,
    filename: str = "seg",
) -> NiftiLabels:
    """A SEG to a NIfTI label map on the grid of its source series ``image``.

    ``reference`` is the image NIfTI (from :func:`convert_series`) whose affine and axis order
    the label map takes; without it the grid is the DICOM one in RAS+."""
    ordered, _ = sort_series(image)
    segmentation, numbers, pixels = segment_masks(seg, ordered)
    overlapping = int(pixels.sum(axis=-1).max(initial=0)) > 1
    if overlapping:
        data = np.transpose(pixels, (2, 1, 0, 3)).astype(np.uint8)
    else:
        values = np.asarray(numbers, dtype=np.uint16)
        data = np.transpose((pixels * values).sum(axis=-1), (2, 1, 0)).astype(np.uint16)
    affine = dicom_affine(ordered)
    if reference is not None:
        target = nib.load(reference).affine
        data = _reorient(data, affine, target)
        affine = target
    out_dir.mkdir(parents=True, exist_ok=True)
    label_map = out_dir / f"{filename}.nii.gz"
    labels = out_dir / f"{filename}.{LABELS_FILE}"
    nifti = nib.Nifti1Image(data, affine)
    nifti.header.set_intent("label" if not overlapping else "none")
    nib.save(nifti, label_map)
    description = {
        "layout": "stacked" if overlapping else "labelmap",
        "source_series_instance_uid": str(ordered[0].SeriesInstanceUID),
        "segments": [_segment_entry(segmentation, number) for number in numbers],
    }
    labels.write_text(json.dumps(description, indent=1))
    return NiftiLabels(label_map=label_map, labels=labels)


def specs_from_labels_file(path: Path) -> tuple[str, list[tuple[int, SegmentSpec]]]:
    """Layout and (number, segment) pairs of a ``labels.json`` written by :func:`seg_to_nifti`."""
    try:
        description = json.loads(path.read_text())
        segments = [
            (int(item["number"]), SegmentSpec.from_json(item)) for item in description["segments"]
        ]
        return str(description.get("layout", "labelmap")), segments
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"'{path}' is not a labels file: {exc}") from exc


def nifti_to_seg(
    label_map: Path,
    image: Sequence[Dataset],
    segments: Sequence[tuple[int, SegmentSpec]],
    *,
    stacked: bool = False,
    operator: str = "import-nifti",
    automatic: bool = False,
) -> hd.seg.Segmentation:
    """A NIfTI label map on the grid of series ``image`` to a SEG over that series. Each
    ``(number, spec)`` pair takes the voxels whose label value is ``number`` (or, for a
    ``stacked`` map, the volume ``number - 1`` of its fourth axis)."""
    labels = [spec.label for _, spec in segments]
    if not labels or len(set(labels)) != len(labels):
        raise InvalidInput(f"segment labels must be distinct and not empty, got {labels}")
    ordered, _ = sort_series(image)
    nifti = nib.load(label_map)
    data = np.asanyarray(nifti.dataobj)
    expected = (ordered[0].Columns, ordered[0].Rows, len(ordered))
    data = _reorient(data, nifti.affine, dicom_affine(ordered))
    if data.shape[:3] != expected or data.ndim != (4 if stacked else 3):
        raise InvalidInput(
            f"label map '{label_map.name}' has shape {data.shape}, the series needs {expected}"
            + (" with one volume per segment" if stacked else "")
        )
    masks = {}
    for number, spec in segments:
        if stacked and not 1 <= number <= data.shape[3]:
            raise InvalidInput(f"segment {number} has no volume in '{label_map.name}'")
        voxels = data[..., number - 1] > 0 if stacked else np.rint(data) == number
        masks[spec.label] = np.transpose(voxels, (2, 1, 0))
    return build_segmentation(
        ordered,
        masks,
        [spec for _, spec in segments],
        operator=operator,
        parameters={"label_map": label_map.name},
        series_description=f"SEG {ordered[0].get('SeriesDescription', '')}".strip(),
        automatic=automatic,
    )
