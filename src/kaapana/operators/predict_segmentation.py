"""Applying a trained segmentation model to an image series, as a DICOM SEG over it.

The model file says which modality it was trained on, its segments (label and codes), the
window of its sliding-window inference and the intensity normalisation; the SEG references
every source instance, the source series and its frame of reference, like the SEGs of
segment-ct, and names the model as its algorithm (family Artificial Intelligence).
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import highdicom as hd
import numpy as np
import torch
from pydicom import Dataset
from pydicom.sr.codedict import codes

from kaapana.operators.segmentation_parameters import (
    PredictSegmentationParameters,
    check_model_modality,
)
from kaapana.operators.series import build_segmentation, load_volume
from kaapana.operators.unet import infer_masks, load_model, normalize, resolve_device

__all__ = ["predict_segmentation"]

_OPERATOR: Final = "predict-segmentation"
_SPACING_WARNING: Final = 0.5
"""Relative difference of voxel spacing to the training data above which a warning is logged."""
log = logging.getLogger(__name__)


def predict_segmentation(
    datasets: Sequence[Dataset],
    model_file: Path,
    parameters: PredictSegmentationParameters,
    *,
    sha256: str | None = None,
    model_name: str = "",
    logger: logging.Logger = log,
) -> hd.seg.Segmentation:
    """SEG of the model's segments over one image series; a series of another modality than
    the model's, or one that is not a regular single-frame volume, is refused by name."""
    if parameters.threads:
        torch.set_num_threads(parameters.threads)
    device = resolve_device(parameters.device)
    config, network = load_model(model_file, sha256=sha256, device=device)
    name = model_name or model_file.name
    modality = str(datasets[0].get("Modality", "")) if datasets else ""
    check_model_modality(name, config.modality, modality)
    volume = load_volume(
        datasets,
        modalities=(config.modality,),
        spacing_tolerance_mm=parameters.spacing_tolerance_mm,
    )
    ratio = np.asarray(volume.spacing) / np.asarray(config.spacing)
    if np.any(np.abs(ratio - 1) > _SPACING_WARNING):
        logger.warning(
            "series %s has voxel spacing %s mm, the training data %s mm: the model sees "
            "structures at another size than it learnt",
            volume.datasets[0].SeriesInstanceUID,
            [round(v, 3) for v in volume.spacing],
            [round(v, 3) for v in config.spacing],
        )
    masks = infer_masks(
        network,
        config,
        normalize(volume.array, config.modality),
        device=device,
        overlap=parameters.overlap,
        threshold=parameters.threshold,
    )
    return build_segmentation(
        volume.datasets,
        {spec.label: masks[index] for index, spec in enumerate(config.specs)},
        config.specs,
        operator=_OPERATOR,
        parameters={"model": name, "sha256": sha256, "threshold": parameters.threshold},
        series_description=f"SEG {name}",
        family=codes.cid7162.ArtificialIntelligence,
    )
