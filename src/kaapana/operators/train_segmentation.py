"""Training a MONAI 3-D U-Net on image + SEG pairs, with a patient-level split, light
augmentations, a checkpoint per epoch that a retry resumes from, and metrics per epoch.

Randomness is seeded per epoch (``seed + epoch``: network initialisation, patch sampling,
augmentation and batch order), so a run resumed from the checkpoint of epoch *n* continues
exactly as the uninterrupted run would have. The model kept is the epoch with the best mean
validation Dice.
"""

import csv
import hashlib
import io
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from monai.losses import DiceLoss
from monai.transforms import (
    Compose,
    EnsureTyped,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandShiftIntensityd,
    SpatialPadd,
)

from kaapana.errors import InvalidInput
from kaapana.operators.charts import line_chart
from kaapana.operators.segmentation_parameters import TrainSegmentationParameters
from kaapana.operators.series import SegmentSpec
from kaapana.operators.training_data import TrainingCase
from kaapana.operators.unet import (
    NetworkConfig,
    build_network,
    infer_masks,
    normalize,
    resolve_device,
    save_atomically,
    save_model,
)

__all__ = [
    "TrainingResult",
    "dice_score",
    "split_patients",
    "train_segmentation",
]

CHECKPOINT: Final = "checkpoint.pt"
MODEL_FILE: Final = "model.pt"
METRICS_CSV: Final = "metrics.csv"
METRICS_JSON: Final = "metrics.json"
METRICS_PLOT: Final = "metrics.svg"
SPLIT_FILE: Final = "split.json"
# Settings that change where the computation runs, not what it computes.
_PLACEMENT: Final = frozenset({"device", "threads"})


@dataclass(frozen=True, slots=True)
class TrainingResult:
    model: Path
    config: NetworkConfig
    history: list[dict[str, Any]]
    best_epoch: int
    validation_dice: dict[str, float]
    train_patients: list[str]
    validation_patients: list[str]
    train_cases: int


def dice_score(predicted: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_]) -> float:
    """2|A∩B| / (|A| + |B|); 1 when both are empty."""
    total = int(predicted.sum()) + int(truth.sum())
    return 1.0 if total == 0 else 2.0 * int((predicted & truth).sum()) / total


def split_patients(
    cases: Sequence[TrainingCase], *, validation_fraction: float, seed: int
) -> tuple[list[TrainingCase], list[TrainingCase]]:
    """Train and validation cases with no patient in both, seeded; at least one patient each."""
    patients = sorted({case.patient_id for case in cases})
    if len(patients) < 2:
        raise InvalidInput(
            f"training needs cases of at least 2 patients (one to validate on), got {patients}"
        )
    shuffled = [patients[i] for i in np.random.default_rng(seed).permutation(len(patients))]
    count = min(len(patients) - 1, max(1, round(validation_fraction * len(patients))))
    held_out = set(shuffled[:count])
    return (
        [case for case in cases if case.patient_id not in held_out],
        [case for case in cases if case.patient_id in held_out],
    )


def _fingerprint(parameters: TrainSegmentationParameters, cases: Sequence[TrainingCase]) -> str:
    """What a checkpoint was made from: a retry resumes only the same training."""
    document = {
        "parameters": parameters.model_dump(mode="json", exclude=set(_PLACEMENT)),
        "cases": sorted(c.seg_series_instance_uid for c in cases),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _transforms(parameters: TrainSegmentationParameters) -> Compose:
    keys = ["image", "label"]
    patch = tuple(parameters.patch_size)
    steps: list[Any] = [
        SpatialPadd(keys, spatial_size=patch),
        # Half the patches centred on a segment, half anywhere else: small structures are seen.
        RandCropByPosNegLabeld(
            keys,
            label_key="label",
            spatial_size=patch,
            pos=1,
            neg=1,
            num_samples=parameters.samples_per_case,
            allow_smaller=True,
        ),
    ]
    if parameters.augment:
        steps += [
            RandFlipd(keys, prob=0.5, spatial_axis=2),
            RandShiftIntensityd("image", offsets=0.1, prob=0.5),
        ]
    steps.append(EnsureTyped(keys, data_type="tensor", track_meta=False))
    return Compose(steps)


def _validation_dice(
    network: torch.nn.Module,
    config: NetworkConfig,
    cases: Sequence[tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]],
    device: torch.device,
) -> dict[str, float]:
    scores = np.zeros((len(cases), len(config.segments)))
    for row, (image, masks) in enumerate(cases):
        predicted = infer_masks(network, config, image, device=device)  # type: ignore[arg-type]
        for column in range(len(config.segments)):
            scores[row, column] = dice_score(predicted[column], masks[column])
    return {label: float(v) for label, v in zip(config.labels, scores.mean(axis=0), strict=True)}


def _write_metrics(out_dir: Path, history: list[dict[str, Any]], labels: list[str]) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["epoch", "loss", *[f"dice_{label}" for label in labels], "seconds"])
    for entry in history:
        dice = [f"{entry['validation_dice'][label]:.6f}" for label in labels]
        writer.writerow([entry["epoch"], f"{entry['loss']:.6f}", *dice, f"{entry['seconds']:.3f}"])
    (out_dir / METRICS_CSV).write_text(text.getvalue())
    (out_dir / METRICS_JSON).write_text(json.dumps({"epochs": history}, indent=1))
    lines = {"loss": [entry["loss"] for entry in history]}
    lines.update(
        {f"Dice {label}": [e["validation_dice"][label] for e in history] for label in labels}
    )
    chart = line_chart(lines, title="Training", x_label="epoch", y_label="loss / Dice")
    (out_dir / METRICS_PLOT).write_text(chart)


def _keep_checkpoint(state: dict[str, Any], out_dir: Path, checkpoint_dir: Path | None) -> None:
    """Into the output folder, and into the folder kept across attempts (a hard link where
    possible, so the checkpoint is written once)."""
    target = out_dir / CHECKPOINT
    save_atomically(state, target)
    if checkpoint_dir is None:
        return
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    temp = checkpoint_dir / f".{CHECKPOINT}.tmp"
    temp.unlink(missing_ok=True)
    try:
        os.link(target, temp)
    except OSError:
        shutil.copyfile(target, temp)
    os.replace(temp, checkpoint_dir / CHECKPOINT)


def _resume(checkpoint_dir: Path | None, fingerprint: str) -> dict[str, Any] | None:
    if checkpoint_dir is None or not (checkpoint_dir / CHECKPOINT).is_file():
        return None
    state: dict[str, Any] = torch.load(
        checkpoint_dir / CHECKPOINT, map_location="cpu", weights_only=True
    )
    return state if state.get("fingerprint") == fingerprint else None


def train_segmentation(
    cases: Sequence[TrainingCase],
    specs: Sequence[SegmentSpec],
    parameters: TrainSegmentationParameters,
    out_dir: Path,
    *,
    checkpoint_dir: Path | None = None,
    initial_state: Mapping[str, torch.Tensor] | None = None,
    proximal_mu: float = 0.0,
    log: Callable[[str], None] = lambda message: None,
    progress: Callable[[float], None] = lambda fraction: None,
) -> TrainingResult:
    """Train on ``cases`` (masks in the order of ``specs``) and write into ``out_dir``: the
    model file, ``checkpoint.pt`` after every epoch, metrics as CSV, JSON and SVG, and the
    split. With ``checkpoint_dir``, the checkpoint is also kept there, and a checkpoint found
    there of the same training is resumed from.

    ``initial_state``: start from these weights (a federated round's global model) instead of
    a seeded initialisation; ``proximal_mu`` > 0 adds FedProx's proximal term
    ``mu / 2 * ||w - w_initial||²`` to the loss, keeping a site's model near the global one."""
    if parameters.threads:
        torch.set_num_threads(parameters.threads)
    device = resolve_device(parameters.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, validation = split_patients(
        cases, validation_fraction=parameters.validation_fraction, seed=parameters.seed
    )
    config = NetworkConfig(
        segments=[spec.to_json() for spec in specs],
        modality=parameters.modality,
        channels=parameters.channels,
        num_res_units=parameters.num_res_units,
        patch_size=parameters.patch_size,
        spacing=[float(v) for v in np.mean([case.spacing for case in cases], axis=0)],
    )
    split = {
        "train": sorted({c.patient_id for c in train}),
        "validation": sorted({c.patient_id for c in validation}),
        "train_series": sorted(c.seg_series_instance_uid for c in train),
        "validation_series": sorted(c.seg_series_instance_uid for c in validation),
    }
    (out_dir / SPLIT_FILE).write_text(json.dumps(split, indent=1))

    torch.manual_seed(parameters.seed)
    network = build_network(config)
    if initial_state is not None:
        try:
            network.load_state_dict(initial_state)
        except RuntimeError as exc:
            raise InvalidInput(f"the initial weights do not fit the network: {exc}") from exc
    network.to(device)
    anchor = [p.detach().clone() for p in network.parameters()] if proximal_mu > 0 else []
    optimizer = torch.optim.Adam(network.parameters(), lr=parameters.learning_rate)
    fingerprint = _fingerprint(parameters, cases)
    history: list[dict[str, Any]] = []
    best_epoch, best_dice, best_state = 0, -1.0, network.state_dict()
    state = _resume(checkpoint_dir, fingerprint)
    if state is not None:
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        history, best_epoch, best_dice = state["history"], state["best_epoch"], state["best_dice"]
        best_state = state["best_network"]
        log(f"resuming after epoch {state['epoch']} from the checkpoint of an earlier attempt")

    items = [
        {
            "image": normalize(c.image, parameters.modality)[None],
            "label": c.masks.astype(np.float32),
        }
        for c in train
    ]
    held_out = [(normalize(c.image, parameters.modality), c.masks) for c in validation]
    transforms = _transforms(parameters)
    dice_loss, bce_loss = DiceLoss(sigmoid=True), torch.nn.BCEWithLogitsLoss()
    for epoch in range(len(history) + 1, parameters.epochs + 1):
        started = time.monotonic()
        torch.manual_seed(parameters.seed + epoch)
        transforms.set_random_state(seed=parameters.seed + epoch)
        samples = [sample for item in items for sample in transforms(item)]
        order = np.random.default_rng(parameters.seed + epoch).permutation(len(samples))
        network.train()
        losses = []
        for start in range(0, len(order), parameters.batch_size):
            chosen = [samples[i] for i in order[start : start + parameters.batch_size]]
            image = torch.stack([s["image"] for s in chosen]).to(device)
            label = torch.stack([s["label"] for s in chosen]).to(device)
            optimizer.zero_grad()
            logits = network(image)
            loss = dice_loss(logits, label) + bce_loss(logits, label)
            if anchor:
                drift = sum(
                    ((p - a) ** 2).sum() for p, a in zip(network.parameters(), anchor, strict=True)
                )
                loss = loss + proximal_mu / 2 * drift
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        dice = _validation_dice(network, config, held_out, device)
        mean = float(np.mean(list(dice.values())))
        entry = {
            "epoch": epoch,
            "loss": float(np.mean(losses)) if losses else math.nan,
            "validation_dice": dice,
            "seconds": time.monotonic() - started,
        }
        history.append(entry)
        if mean > best_dice:
            best_epoch, best_dice = epoch, mean
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        _keep_checkpoint(
            {
                "fingerprint": fingerprint,
                "epoch": epoch,
                "network": network.state_dict(),
                "optimizer": optimizer.state_dict(),
                "history": history,
                "best_epoch": best_epoch,
                "best_dice": best_dice,
                "best_network": best_state,
            },
            out_dir,
            checkpoint_dir,
        )
        _write_metrics(out_dir, history, config.labels)
        log(
            f"epoch {epoch}/{parameters.epochs}: loss {entry['loss']:.4f}, validation Dice "
            + ", ".join(f"{label} {value:.3f}" for label, value in dice.items())
        )
        progress(epoch / parameters.epochs)
    if not (out_dir / METRICS_CSV).exists():
        _write_metrics(out_dir, history, config.labels)
    save_model(out_dir / MODEL_FILE, config, best_state)
    return TrainingResult(
        model=out_dir / MODEL_FILE,
        config=config,
        history=history,
        best_epoch=best_epoch,
        validation_dice=dict(history[best_epoch - 1]["validation_dice"]),
        train_patients=split["train"],
        validation_patients=split["validation"],
        train_cases=len(train),
    )
