"""What may leave a site: checked at the participant before upload and again at the
orchestrator on receipt, file by file.

Only the workflow's declared federated outputs, within the size limit, and never DICOM (a Part
10 file with its ``DICM`` preamble, or a bare dataset that parses) nor arrays (NumPy ``.npy``,
``.npz``, and torch tensor files: pixel data in its most common research forms) unless the
site's policy allows pixel data explicitly.

The one allowance is narrow: outputs the workflow declares as model weights
(``federated_weights``, part of the definition hash its data owner approved) may be torch
files, and then must be state dicts: loaded without running code (``weights_only``), every
tensor a value of a name-to-tensor mapping, everything else plain JSON-type metadata. An image
smuggled in as a weight still passes this check, which is why the aggregator also refuses
weights whose names and shapes are not the global model's.
"""

import io
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from kaapana.errors import Forbidden

_NUMPY_MAGIC = b"\x93NUMPY"
# First tags of a bare (preamble-less) dataset: file meta (0002) or identification (0008).
_BARE_DICOM_GROUPS = (b"\x02\x00", b"\x08\x00")


class OutputRefused(Forbidden):
    code = "output_refused"


def looks_like_dicom(data: bytes) -> bool:
    if len(data) >= 132 and data[128:132] == b"DICM":
        return True
    if data[:2] not in _BARE_DICOM_GROUPS:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(io.BytesIO(data), force=True)
            return len(dataset) > 0 and all(element.tag.group < 0xFFFF for element in dataset)
    except (InvalidDicomError, ValueError, TypeError, EOFError, OSError, KeyError):
        return False


def looks_like_numpy(name: str, data: bytes) -> bool:
    if data.startswith(_NUMPY_MAGIC) or PurePosixPath(name).suffix.lower() in (".npy", ".npz"):
        return True
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return any(member.endswith(".npy") for member in archive.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def looks_like_torch(data: bytes) -> bool:
    """A ``torch.save`` file (a zip archive with a ``data.pkl``)."""
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(member.endswith("/data.pkl") for member in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _tensors_only_in_state_dicts(value: Any, tensor: type) -> bool:
    if isinstance(value, tensor):
        return False  # a tensor outside a name-to-tensor mapping
    if isinstance(value, Mapping):
        items = list(value.items())
        if items and all(isinstance(k, str) and isinstance(v, tensor) for k, v in items):
            return True
        return all(isinstance(k, str) and _tensors_only_in_state_dicts(v, tensor) for k, v in items)
    if isinstance(value, list | tuple):
        return all(_tensors_only_in_state_dicts(v, tensor) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def check_state_dict(name: str, data: bytes) -> None:
    """Refuse a declared weights output that is not a torch state-dict file."""
    if not looks_like_torch(data):
        raise OutputRefused(f"output {name!r} is declared as model weights but is no torch file")
    import torch  # only where weights are checked: federation runs without torch otherwise

    try:
        content = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file it refuses
        raise OutputRefused(
            f"output {name!r} does not load as plain weights ({type(exc).__name__})"
        ) from exc
    if not isinstance(content, Mapping) or not _tensors_only_in_state_dicts(content, torch.Tensor):
        raise OutputRefused(
            f"output {name!r} is declared as model weights but holds tensors outside a state dict"
        )


def check_outputs(
    files: Mapping[str, bytes],
    *,
    declared: Sequence[str],
    max_bytes: int,
    allow_pixel_data: bool,
    weights: Sequence[str] = (),
) -> None:
    """Raise ``OutputRefused`` naming the first file that may not leave, and why. ``weights``:
    the declared outputs that are model weights, accepted as torch state dicts only."""
    total = sum(len(data) for data in files.values())
    if total > max_bytes:
        raise OutputRefused(f"the outputs are {total} bytes; the site's limit is {max_bytes} bytes")
    for name, data in files.items():
        if name not in declared:
            raise OutputRefused(
                f"output {name!r} is not a declared federated output of the workflow "
                f"(declared: {', '.join(declared) or 'none'})"
            )
        if name in weights:
            check_state_dict(name, data)
            continue
        if allow_pixel_data:
            continue
        if looks_like_dicom(data):
            raise OutputRefused(f"output {name!r} is DICOM; DICOM never leaves the site")
        if looks_like_numpy(name, data):
            raise OutputRefused(
                f"output {name!r} is a NumPy array; pixel data leaves only where the site's "
                "policy allows it"
            )
        if looks_like_torch(data):
            raise OutputRefused(
                f"output {name!r} is a torch tensor file; tensors leave only as the workflow's "
                "declared model weights, or where the site's policy allows pixel data"
            )


__all__ = [
    "OutputRefused",
    "check_outputs",
    "check_state_dict",
    "looks_like_dicom",
    "looks_like_numpy",
    "looks_like_torch",
]
