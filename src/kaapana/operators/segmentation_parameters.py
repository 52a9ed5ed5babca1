"""Parameters of train-segmentation and predict-segmentation, apart from the code that needs
torch: the workflow definitions (and the server that lists them) load without importing it."""

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kaapana.errors import InvalidInput
from kaapana.models.names import MODEL_NAME_PATTERN

__all__ = [
    "DeviceValues",
    "FederatedTrainingParameters",
    "PredictSegmentationParameters",
    "TrainSegmentationParameters",
    "check_model_modality",
]

DeviceValues = Literal["auto", "cpu", "cuda"]


class TrainSegmentationParameters(BaseModel):
    """What train-segmentation learns, from which data, and how."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(
        default="segmentation",
        pattern=MODEL_NAME_PATTERN,
        description="Name in the model registry; each training adds a version.",
    )
    labels: list[str] = Field(
        default=["lungs"],
        min_length=1,
        max_length=16,
        description="Segment labels of the SEGs to learn, one output each.",
    )
    modality: str = Field(
        default="CT", pattern=r"^[A-Z]{2,16}$", description="Modality of the image series."
    )
    epochs: int = Field(default=50, ge=1, le=10_000, description="Passes over the training set.")
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0, description="Adam's step size.")
    batch_size: int = Field(default=2, ge=1, le=64, description="Patches per optimiser step.")
    samples_per_case: int = Field(
        default=2, ge=1, le=32, description="Patches drawn from each case per epoch."
    )
    channels: list[int] = Field(
        default=[16, 32, 64, 128],
        min_length=2,
        max_length=6,
        description="Feature channels per U-Net level; e.g. [4, 8, 16] is a tiny network.",
    )
    num_res_units: int = Field(default=2, ge=0, le=4, description="Residual units per level.")
    patch_size: list[int] = Field(
        default=[32, 96, 96],
        min_length=3,
        max_length=3,
        description="Slices, rows, columns of a training patch and of the inference window.",
    )
    validation_fraction: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="Share of patients held out for validation."
    )
    augment: bool = Field(default=True, description="Random flips and intensity shifts.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seeds split and training.")
    device: DeviceValues = Field(default="auto", description="auto: a GPU when there is one.")
    threads: int = Field(default=0, ge=0, le=256, description="CPU threads; 0: torch's default.")
    spacing_tolerance_mm: float = Field(
        default=0.01, gt=0.0, description="Allowed deviation between slice gaps."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.labels)) != len(self.labels) or not all(self.labels):
            raise ValueError(f"'labels' must be distinct and not empty, got {self.labels}")
        if any(not 1 <= c <= 1024 for c in self.channels):
            raise ValueError(f"'channels' must be 1-1024 each, got {self.channels}")
        factor = 2 ** (len(self.channels) - 1)
        if any(size < factor or size % factor for size in self.patch_size):
            raise ValueError(
                f"'patch_size' must be multiples of {factor} (2 per U-Net level below the "
                f"first), got {self.patch_size}"
            )
        return self


class FederatedTrainingParameters(TrainSegmentationParameters):
    """train-segmentation as one site's part of a federated round: ``epochs`` are the local
    epochs per round, started from the round's global weights."""

    proximal_mu: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        description="FedProx's proximal term weight mu; 0: plain FedAvg.",
    )
    push_model: bool = Field(
        default=False,
        description="After the last round, offer the final model to every site that delivered "
        "it, which registers it in its own model registry.",
    )
    federated_input: str = Field(
        default="",
        max_length=4096,
        description="Folder of the round's global weights (set by the site's federation).",
    )


class PredictSegmentationParameters(BaseModel):
    """How predict-segmentation applies a model."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1,
        max_length=80,
        description="Registered model as 'name' (its latest version) or 'name/version'.",
    )
    threshold: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="Probability above which a voxel is in."
    )
    overlap: float = Field(
        default=0.25, ge=0.0, lt=1.0, description="Overlap of neighbouring inference windows."
    )
    device: DeviceValues = Field(default="auto", description="auto: a GPU when there is one.")
    threads: int = Field(default=0, ge=0, le=256, description="CPU threads; 0: torch's default.")
    spacing_tolerance_mm: float = Field(
        default=0.01, gt=0.0, description="Allowed deviation between slice gaps."
    )


def check_model_modality(model: str, model_modality: str, modality: str) -> None:
    """A model applies to series of the modality it was trained on only (CT intensities mean
    nothing to an MR model); checked before torch loads, where the index knows the modality."""
    if modality != model_modality:
        raise InvalidInput(
            f"model {model!r} segments {model_modality} series; this series is "
            f"{modality or 'without a Modality'}"
        )
