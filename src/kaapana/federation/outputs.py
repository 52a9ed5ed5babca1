"""What may leave a site: checked at the participant before upload and again at the
orchestrator on receipt, file by file.

Only the workflow's declared federated outputs, within the size limit, and never DICOM (a Part
10 file with its ``DICM`` preamble, or a bare dataset that parses) nor NumPy arrays (``.npy``,
``.npz``: pixel data in its most common research form) unless the site's policy allows pixel
data explicitly.
"""

import io
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

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


def check_outputs(
    files: Mapping[str, bytes],
    *,
    declared: Sequence[str],
    max_bytes: int,
    allow_pixel_data: bool,
) -> None:
    """Raise ``OutputRefused`` naming the first file that may not leave, and why."""
    total = sum(len(data) for data in files.values())
    if total > max_bytes:
        raise OutputRefused(f"the outputs are {total} bytes; the site's limit is {max_bytes} bytes")
    for name, data in files.items():
        if name not in declared:
            raise OutputRefused(
                f"output {name!r} is not a declared federated output of the workflow "
                f"(declared: {', '.join(declared) or 'none'})"
            )
        if allow_pixel_data:
            continue
        if looks_like_dicom(data):
            raise OutputRefused(f"output {name!r} is DICOM; DICOM never leaves the site")
        if looks_like_numpy(name, data):
            raise OutputRefused(
                f"output {name!r} is a NumPy array; pixel data leaves only where the site's "
                "policy allows it"
            )


__all__ = ["OutputRefused", "check_outputs", "looks_like_dicom", "looks_like_numpy"]
