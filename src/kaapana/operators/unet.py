"""The 3-D U-Net of the segmentation workflows and its model file.

One module builds the network, normalises intensities and reads and writes the model file, so
training and inference can never disagree about any of them. The file is a ``torch.save`` of
plain data (the configuration as JSON types and the weights as tensors), read back with
``weights_only=True``: loading a model never runs code from the file.
"""

import hashlib
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kaapana.errors import InvalidInput
from kaapana.operators.segmentation_parameters import DeviceValues
from kaapana.operators.series import SegmentSpec

__all__ = [
    "MODEL_FORMAT",
    "NetworkConfig",
    "build_network",
    "infer_masks",
    "load_model",
    "normalize",
    "resolve_device",
    "save_atomically",
    "save_model",
]

MODEL_FORMAT: Final = "kaapana-unet/1"
_CT_WINDOW: Final = (-1000.0, 1000.0)


class NetworkConfig(BaseModel):
    """Everything needed to rebuild the network and feed it as in training."""

    model_config = ConfigDict(extra="forbid")

    segments: list[dict[str, Any]] = Field(min_length=1)
    """One output channel per segment (``SegmentSpec.to_json``), in order."""
    modality: str
    channels: list[int] = Field(min_length=2)
    num_res_units: int = Field(ge=0)
    patch_size: list[int] = Field(min_length=3, max_length=3)
    """Slices, rows, columns of the training patches and the inference window."""
    spacing: list[float] = Field(min_length=3, max_length=3)
    """Mean voxel spacing of the training series (slice, row, column) in mm, for checks."""

    @property
    def specs(self) -> list[SegmentSpec]:
        return [SegmentSpec.from_json(item) for item in self.segments]

    @property
    def labels(self) -> list[str]:
        return [str(item["label"]) for item in self.segments]


def build_network(config: NetworkConfig) -> UNet:
    """MONAI's residual U-Net, halving the grid at every level but the last; one logit per
    segment (segments may overlap, so each is its own sigmoid, not one softmax)."""
    return UNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=len(config.segments),
        channels=tuple(config.channels),
        strides=(2,) * (len(config.channels) - 1),
        num_res_units=config.num_res_units,
    )


def normalize(volume: npt.NDArray[np.float32], modality: str) -> npt.NDArray[np.float32]:
    """CT: HU clipped to [-1000, 1000] and scaled to [-1, 1] (HU mean the same everywhere);
    other modalities have arbitrary units, so each volume is scaled to zero mean, unit std."""
    if modality == "CT":
        low, high = _CT_WINDOW
        scaled = (np.clip(volume, low, high) - (low + high) / 2) / ((high - low) / 2)
        return scaled.astype(np.float32)
    std = float(volume.std())
    return ((volume - float(volume.mean())) / (std if std > 0 else 1.0)).astype(np.float32)


def resolve_device(device: DeviceValues) -> torch.device:
    """``auto``: the GPU when there is one; ``cuda`` without one is refused."""
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidInput("'device' is 'cuda', but this worker has no CUDA device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def save_atomically(value: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary name and rename: a kill mid-write leaves the old file."""
    temp = path.with_name(f".{path.name}.tmp")
    torch.save(dict(value), temp)
    os.replace(temp, path)


def save_model(path: Path, config: NetworkConfig, state: Mapping[str, torch.Tensor]) -> None:
    save_atomically(
        {"format": MODEL_FORMAT, "config": config.model_dump(mode="json"), "state": dict(state)},
        path,
    )


def load_model(
    path: Path, *, sha256: str | None = None, device: torch.device | None = None
) -> tuple[NetworkConfig, UNet]:
    """The network of a model file in evaluation mode; with ``sha256``, the file must be the
    one the registry recorded."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"the model file '{path}' cannot be read: {exc}") from exc
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidInput(f"the model file '{path}' is not the registered one (sha256 differs)")
    try:
        content = torch.load(path, map_location=device or "cpu", weights_only=True)
        if content.get("format") != MODEL_FORMAT:
            raise ValueError(f"format {content.get('format')!r}, expected {MODEL_FORMAT!r}")
        config = NetworkConfig.model_validate(content["config"])
        network = build_network(config)
        network.load_state_dict(content["state"])
    except (
        ValidationError,
        ValueError,
        KeyError,
        RuntimeError,
        AttributeError,
        EOFError,
        pickle.UnpicklingError,
    ) as exc:
        raise InvalidInput(f"'{path}' is not a kaapana segmentation model: {exc}") from exc
    if device is not None:
        network.to(device)
    network.eval()
    return config, network


def infer_masks(
    network: UNet,
    config: NetworkConfig,
    image: npt.NDArray[np.float32],
    *,
    device: torch.device,
    overlap: float = 0.25,
    threshold: float = 0.5,
) -> npt.NDArray[np.bool_]:
    """Masks ``(segments, slices, rows, columns)`` of a normalised volume, by sliding-window
    inference with the training patch as window (Gaussian-weighted where windows overlap)."""
    network.eval()
    with torch.no_grad():
        batch = torch.from_numpy(np.ascontiguousarray(image))[None, None].to(device)
        logits = sliding_window_inference(
            batch,
            roi_size=tuple(config.patch_size),
            sw_batch_size=1,
            predictor=network,
            overlap=overlap,
            mode="gaussian",
        )
        assert isinstance(logits, torch.Tensor)
        return np.asarray((torch.sigmoid(logits)[0] > threshold).cpu().numpy())
