"""Image + SEG pairs as voxel arrays for training, from one series at a time.

A per-series task sees only its own series, so each series is exported on its own: an image
series as its volume in slice order with the SOP Instance UID of every slice, a SEG as its
binary frames per *source* SOP Instance UID (the frames' derivation references), plus the series
it references. :func:`pair_cases` then joins them on the SEG's ReferencedSeriesSequence and puts
the SEG frames onto the image's slices. Nothing is resampled: a model learns the voxel grid of
its training series.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom import Dataset

from kaapana.errors import InvalidInput
from kaapana.operators.series import SegmentSpec, load_volume

__all__ = [
    "TrainingCase",
    "export_image",
    "export_segmentation",
    "export_series",
    "pair_cases",
]

DESCRIPTION_FILE: Final = "volume.json"
ARRAYS_FILE: Final = "volume.npz"


@dataclass(frozen=True, slots=True)
class TrainingCase:
    """One image with its masks, both ``(slices, rows, columns)`` in the image's slice order."""

    patient_id: str
    image_series_instance_uid: str
    seg_series_instance_uid: str
    image: npt.NDArray[np.float32]
    masks: npt.NDArray[np.bool_]
    """``(labels, slices, rows, columns)``, in the order of the requested labels."""
    spacing: tuple[float, float, float]


def _write(out_dir: Path, description: dict[str, Any], **arrays: npt.NDArray[Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / ARRAYS_FILE, **arrays)
    target = out_dir / DESCRIPTION_FILE
    target.write_text(json.dumps(description, indent=1))
    return target


def export_image(
    datasets: Sequence[Dataset],
    out_dir: Path,
    *,
    modality: str,
    spacing_tolerance_mm: float = 0.01,
) -> Path:
    """The checked volume of an image series of ``modality`` (HU for CT)."""
    volume = load_volume(
        datasets, modalities=(modality,), spacing_tolerance_mm=spacing_tolerance_mm
    )
    first = volume.datasets[0]
    description = {
        "kind": "image",
        "series_instance_uid": str(first.SeriesInstanceUID),
        "patient_id": str(first.get("PatientID", "")),
        "modality": modality,
        "frame_of_reference_uid": str(first.FrameOfReferenceUID),
        "sop_instance_uids": [str(ds.SOPInstanceUID) for ds in volume.datasets],
        "spacing": list(volume.spacing),
    }
    return _write(out_dir, description, image=volume.array)


def export_segmentation(seg: Dataset, out_dir: Path, *, labels: Sequence[str]) -> Path:
    """The frames of the segments ``labels`` of a binary or fractional SEG of one image series,
    per source SOP Instance UID; a SEG without one of them is refused, naming what it has."""
    uid = str(seg.SeriesInstanceUID)
    referenced = list(seg.get("ReferencedSeriesSequence", []))
    if len(referenced) != 1:
        raise InvalidInput(
            f"SEG {uid} references {len(referenced)} series; training needs exactly one image "
            "series per SEG"
        )
    try:
        segmentation = hd.seg.Segmentation.from_dataset(seg, copy=False)
    except (AttributeError, ValueError, TypeError) as exc:
        raise InvalidInput(f"series {uid} is not a readable SEG: {exc}") from exc
    by_label = {
        str(segmentation.get_segment_description(number).segment_label): number
        for number in segmentation.segment_numbers
    }
    missing = [label for label in labels if label not in by_label]
    if missing:
        raise InvalidInput(f"SEG {uid} has no segment {missing}; it has {sorted(by_label)}")
    sources = [
        str(item.ReferencedSOPInstanceUID) for item in referenced[0].ReferencedInstanceSequence
    ]
    try:
        frames = segmentation.get_pixels_by_source_instance(
            sources,
            segment_numbers=[by_label[label] for label in labels],
            assert_missing_frames_are_empty=True,
            dtype=np.uint8,
        )
    except (KeyError, ValueError, RuntimeError) as exc:
        raise InvalidInput(f"the frames of SEG {uid} cannot be placed per source: {exc}") from exc
    specs = []
    for label in labels:
        item = segmentation.get_segment_description(by_label[label])
        specs.append(
            SegmentSpec(label, item.segmented_property_category, item.segmented_property_type)
        )
    description = {
        "kind": "segmentation",
        "series_instance_uid": uid,
        "patient_id": str(seg.get("PatientID", "")),
        "referenced_series_instance_uid": str(referenced[0].SeriesInstanceUID),
        "frame_of_reference_uid": str(seg.get("FrameOfReferenceUID", "")),
        "sop_instance_uids": sources,
        "segments": [spec.to_json() for spec in specs],
    }
    # (labels, frames, rows, columns): the mask layout of TrainingCase.
    return _write(out_dir, description, masks=np.moveaxis(frames > 0, -1, 0))


def export_series(
    datasets: Sequence[Dataset],
    out_dir: Path,
    *,
    labels: Sequence[str],
    modality: str,
    spacing_tolerance_mm: float = 0.01,
) -> Path:
    """:func:`export_segmentation` for a SEG series, :func:`export_image` for any other."""
    if not datasets:
        raise InvalidInput("the series has no instances")
    if str(datasets[0].get("Modality", "")) == "SEG":
        if len(datasets) != 1:
            raise InvalidInput(f"a SEG series must hold one instance, got {len(datasets)}")
        return export_segmentation(datasets[0], out_dir, labels=labels)
    return export_image(
        datasets, out_dir, modality=modality, spacing_tolerance_mm=spacing_tolerance_mm
    )


def _read(folder: Path) -> dict[str, Any]:
    try:
        description: dict[str, Any] = json.loads((folder / DESCRIPTION_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"'{folder}' holds no exported series: {exc}") from exc
    description["folder"] = folder
    return description


def _arrays(description: dict[str, Any], key: str) -> npt.NDArray[Any]:
    with np.load(description["folder"] / ARRAYS_FILE) as arrays:
        return np.asarray(arrays[key])


def pair_cases(
    folders: Iterable[Path],
) -> tuple[list[TrainingCase], list[SegmentSpec], list[str]]:
    """Each exported SEG with its exported image series: the cases, the segments (as the first
    SEG codes them) and the image series left without a SEG.

    A SEG whose image series is not among the exports, or that lies in another frame of
    reference, or a second SEG of one image, is refused by name: training must not quietly
    learn from fewer cases than it was given."""
    exported = [_read(folder) for folder in folders]
    images = {d["series_instance_uid"]: d for d in exported if d["kind"] == "image"}
    segs = sorted(
        (d for d in exported if d["kind"] == "segmentation"),
        key=lambda d: d["series_instance_uid"],
    )
    if not segs:
        raise InvalidInput("the run has no SEG series: training needs image + SEG pairs")
    cases, used, specs = [], set(), [SegmentSpec.from_json(item) for item in segs[0]["segments"]]
    for seg in segs:
        uid, image_uid = seg["series_instance_uid"], seg["referenced_series_instance_uid"]
        image = images.get(image_uid)
        if image is None:
            raise InvalidInput(
                f"SEG {uid} references image series {image_uid}, which is not an input of the "
                "run: add the image series (or remove the SEG)"
            )
        if seg["frame_of_reference_uid"] not in ("", image["frame_of_reference_uid"]):
            raise InvalidInput(
                f"SEG {uid} lies in frame of reference {seg['frame_of_reference_uid']}, its "
                f"image series {image_uid} in {image['frame_of_reference_uid']}"
            )
        if image_uid in used:
            raise InvalidInput(
                f"image series {image_uid} has more than one SEG ({uid} is another): keep one"
            )
        used.add(image_uid)
        volume = _arrays(image, "image").astype(np.float32)
        frames = _arrays(seg, "masks")
        position = {sop: index for index, sop in enumerate(seg["sop_instance_uids"])}
        if frames.shape[2:] != volume.shape[1:]:
            raise InvalidInput(
                f"SEG {uid} has frames of {frames.shape[2:]} pixels, its image {volume.shape[1:]}"
            )
        masks = np.zeros((frames.shape[0], *volume.shape), dtype=np.bool_)
        for slice_index, sop in enumerate(image["sop_instance_uids"]):
            if sop in position:
                masks[:, slice_index] = frames[:, position[sop]]
        cases.append(
            TrainingCase(
                patient_id=image["patient_id"],
                image_series_instance_uid=image_uid,
                seg_series_instance_uid=uid,
                image=volume,
                masks=masks,
                spacing=(image["spacing"][0], image["spacing"][1], image["spacing"][2]),
            )
        )
    unlabelled = sorted(set(images) - used)
    return cases, specs, unlabelled
