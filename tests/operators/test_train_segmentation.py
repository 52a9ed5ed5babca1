"""Training data, split, checkpoints and model files of train- and predict-segmentation."""

from pathlib import Path

import numpy as np
import pytest
from pydicom import Dataset

from kaapana.errors import InvalidInput
from kaapana.operators.segmentation_parameters import TrainSegmentationParameters
from kaapana.operators.training_data import export_series, pair_cases
from kaapana.testing import ct_series
from kaapana.testing.synthetic import ct_segmentation, mr_series, phantom_volume

LABELS = ["lungs"]


def case(seed: int, patient: str | None = None) -> tuple[list[Dataset], Dataset]:
    ct = ct_series(patient_id=patient or f"TR{seed}", rows=32, columns=32, slices=16, seed=seed)
    return ct, ct_segmentation(ct, seed=seed, labels=("lungs", "liver"))


def export(tmp_path: Path, name: str, datasets: list[Dataset]) -> Path:
    return export_series(datasets, tmp_path / name, labels=LABELS, modality="CT").parent


def test_pairs_join_on_the_referenced_series_and_put_the_frames_on_the_image_slices(
    tmp_path: Path,
) -> None:
    ct, seg = case(0)
    # The SEG's frames are ordered by its own rules; the image's by slice position.
    folders = [export(tmp_path, "seg", [seg]), export(tmp_path, "ct", list(reversed(ct)))]
    folders.append(export(tmp_path, "unlabelled", case(1)[0]))
    cases, specs, unlabelled = pair_cases(folders)
    (only,) = cases
    assert [spec.label for spec in specs] == ["lungs"]
    assert specs[0].property_type.meaning == "Lung"
    assert unlabelled == [case(1)[0][0].SeriesInstanceUID]
    assert only.patient_id == "TR0" and only.masks.shape == (1, 16, 32, 32)
    # The phantom is in instance order (instance 1 at the top); the volume goes upwards.
    truth = phantom_volume(rows=32, columns=32, slices=16, seed=0).masks["lungs"][::-1]
    assert np.array_equal(only.masks[0], truth)
    assert only.image.shape == (16, 32, 32) and only.image.min() < -500


def test_a_seg_without_its_image_or_the_label_and_an_image_of_another_modality_are_refused(
    tmp_path: Path,
) -> None:
    ct, seg = case(0)
    with pytest.raises(InvalidInput, match=r"references image series .* not an input of the run"):
        pair_cases([export(tmp_path, "seg", [seg])])
    with pytest.raises(
        InvalidInput, match=r"has no segment \['bones'\]; it has \['liver', 'lungs'\]"
    ):
        export_series([seg], tmp_path / "bones", labels=["bones"], modality="CT")
    with pytest.raises(InvalidInput, match=r"'Modality' must be one of \['CT'\], got 'MR'"):
        export(tmp_path, "mr", mr_series(rows=32, columns=32, slices=4))
    with pytest.raises(InvalidInput, match="no SEG series"):
        pair_cases([export(tmp_path, "ct", ct)])


def test_a_second_seg_of_one_image_is_refused(tmp_path: Path) -> None:
    ct, seg = case(0)
    other = ct_segmentation(ct, seed=0, labels=("lungs",))
    folders = [
        export(tmp_path, "ct", ct),
        export(tmp_path, "a", [seg]),
        export(tmp_path, "b", [other]),
    ]
    with pytest.raises(InvalidInput, match="has more than one SEG"):
        pair_cases(folders)


def test_parameters_refuse_patches_the_network_cannot_halve() -> None:
    with pytest.raises(ValueError, match="'patch_size' must be multiples of 4"):
        TrainSegmentationParameters(channels=[4, 8, 16], patch_size=[6, 32, 32])
    with pytest.raises(ValueError, match="distinct"):
        TrainSegmentationParameters(labels=["lungs", "lungs"])


@pytest.mark.slow
def test_patient_split_checkpoints_and_a_resumed_training_equal_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    import torch

    from kaapana.operators.train_segmentation import split_patients, train_segmentation
    from kaapana.operators.unet import load_model

    torch.set_num_threads(1)
    folders = []
    for seed, patient in enumerate(["A", "A", "B", "C"]):  # two studies of patient A
        ct, seg = case(seed, patient)
        folders += [export(tmp_path, f"ct{seed}", ct), export(tmp_path, f"seg{seed}", [seg])]
    cases, specs, _ = pair_cases(folders)
    train, validation = split_patients(cases, validation_fraction=0.3, seed=3)
    assert not {c.patient_id for c in train} & {c.patient_id for c in validation}
    assert split_patients(cases, validation_fraction=0.3, seed=3) == (train, validation)
    with pytest.raises(InvalidInput, match="at least 2 patients"):
        split_patients([c for c in cases if c.patient_id == "A"], validation_fraction=0.5, seed=0)

    parameters = TrainSegmentationParameters(
        epochs=2, channels=[2, 4], num_res_units=0, patch_size=[16, 32, 32], device="cpu"
    )
    whole = train_segmentation(cases, specs, parameters, tmp_path / "whole")

    def stop_after_one(fraction: float) -> None:
        if fraction >= 1 / 2:
            raise KeyboardInterrupt

    checkpoints = tmp_path / "kept"
    with pytest.raises(KeyboardInterrupt):
        train_segmentation(
            cases,
            specs,
            parameters,
            tmp_path / "first",
            checkpoint_dir=checkpoints,
            progress=stop_after_one,
        )
    messages: list[str] = []
    resumed = train_segmentation(
        cases,
        specs,
        parameters,
        tmp_path / "second",
        checkpoint_dir=checkpoints,
        log=messages.append,
    )
    assert messages[0] == "resuming after epoch 1 from the checkpoint of an earlier attempt"
    assert [e["loss"] for e in resumed.history] == [e["loss"] for e in whole.history]
    assert resumed.validation_dice == whole.validation_dice
    assert (tmp_path / "second" / "checkpoint.pt").is_file()
    csv = (tmp_path / "second" / "metrics.csv").read_text().splitlines()
    assert csv[0] == "epoch,loss,dice_lungs,seconds" and len(csv) == 3
    assert (tmp_path / "second" / "metrics.svg").read_text().startswith("<svg")

    config, _network = load_model(resumed.model)
    assert config.labels == ["lungs"] and config.modality == "CT"
    with pytest.raises(InvalidInput, match="not the registered one"):
        load_model(resumed.model, sha256="0" * 64)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InvalidInput, match="is not a kaapana segmentation model"):
        load_model(tmp_path / "junk.pt")
