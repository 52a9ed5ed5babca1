"""Tiny synthetic cohorts for federation tests: CT with SEG per patient, split over sites;
lung cases and a tiny U-Net for federated training."""

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from kaapana.federation.statistics import series_record, site_statistics
from kaapana.operators.training_data import TrainingCase, export_series, pair_cases
from kaapana.platform import Platform
from kaapana.testing import ct_segmentation, ct_series, write_datasets
from tests.helpers import part10

SLICES = 6
TINY_TRAINING = {
    "model_name": "federated-lungs",
    "labels": ["lungs"],
    "epochs": 4,
    "learning_rate": 0.03,
    "channels": [4, 8, 16],
    "num_res_units": 1,
    "patch_size": [16, 32, 32],
    "samples_per_case": 2,
    "validation_fraction": 0.3,
    "threads": 1,
    "device": "cpu",
}
"""federated-training's parameters for a network that learns the synthetic lungs in seconds."""


def lung_case(seed: int) -> tuple[list[Any], Any]:
    """A CT series and its lungs SEG."""
    ct = ct_series(patient_id=f"FT{seed}", rows=32, columns=32, slices=16, seed=seed)
    return ct, ct_segmentation(ct, seed=seed, labels=("lungs",))


def held_out(folder: Path) -> list[TrainingCase]:
    """Two lung cases no site has, to judge a global model by."""
    folders = []
    for seed in (100, 101):
        ct, seg = lung_case(seed)
        for name, datasets in ((f"ct{seed}", ct), (f"seg{seed}", [seg])):
            export_series(datasets, folder / name, labels=["lungs"], modality="CT")
            folders.append(folder / name)
    return pair_cases(folders)[0]


def dice_of(model_file: bytes, cases: list[TrainingCase], folder: Path) -> float:
    """The model's mean Dice over ``cases``."""
    import torch

    from kaapana.operators.train_segmentation import dice_score
    from kaapana.operators.unet import infer_masks, load_model, normalize

    path = folder / "global.pt"
    path.write_bytes(model_file)
    config, network = load_model(path)
    scores = [
        dice_score(
            infer_masks(network, config, normalize(c.image, "CT"), device=torch.device("cpu"))[0],
            c.masks[0],
        )
        for c in cases
    ]
    return float(np.mean(scores))


def write_patient(folder: Path, patient_id: str, seed: int) -> list[Path]:
    """One CT series and its SEG as Part 10 files under ``folder``."""
    ct = ct_series(
        rows=32,
        columns=32,
        slices=SLICES,
        seed=seed,
        patient_id=patient_id,
        patient_name=f"Phantom^{patient_id}",
    )
    return write_datasets([*ct, ct_segmentation(ct, seed=seed)], folder / patient_id)


def load_dataset(platform: Platform, files: list[Path], dataset: str = "cohort") -> None:
    """Store the files into the admin project's ``dataset``."""
    target = platform.archive.target("admin", dataset)
    for path in files:
        platform.archive.store_bytes(path.read_bytes(), target, source="test")
    platform.archive.flush()


def bare_dicom() -> bytes:
    """A dataset without preamble (what a careless operator might upload)."""
    return part10(ct_series(rows=16, columns=16, slices=1)[0])[132:]


def direct_statistics(files: list[Path]) -> dict[str, Any]:
    """The statistics computed directly on these files, as one site would."""
    by_series: dict[str, list[Path]] = {}
    header: dict[str, tuple[str, str]] = {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        by_series.setdefault(ds.SeriesInstanceUID, []).append(path)
        header[ds.SeriesInstanceUID] = (ds.Modality, ds.StudyInstanceUID)
    return site_statistics(
        series_record(sorted(paths), *header[uid]) for uid, paths in by_series.items()
    )


COUNTS = ("patients", "studies", "series", "instances", "modality", "series_per_patient")


def assert_statistics_equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Counts and histograms exactly, sums and moments up to rounding."""
    assert {k: a[k] for k in COUNTS} == {k: b[k] for k in COUNTS}
    assert a["organ_volume_ml"].keys() == b["organ_volume_ml"].keys()
    for label, summary in a["organ_volume_ml"].items():
        other = b["organ_volume_ml"][label]
        assert summary["histogram"] == other["histogram"], label
        assert summary["count"] == other["count"], label
        for key in ("sum", "min", "max", "mean", "sd"):
            assert summary[key] == pytest.approx(other[key], abs=1e-4), (label, key)
