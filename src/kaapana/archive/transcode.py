"""Re-encoding stored objects in Explicit VR Little Endian, the syntax every DICOM reader takes.

WADO-RS must answer ``application/dicom`` in Explicit VR Little Endian, its default syntax, to
a client that asks for no other, and a DIMSE peer may accept a SOP class only uncompressed.
Compressed objects are decompressed with pydicom's decoders; native ones only change their
encoding, keeping every value and the SOP Instance UID.
"""

import io
from typing import Final

import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian

from kaapana.archive.metadata import read_dataset
from kaapana.errors import InvalidDicom

__all__ = ["can_transcode", "decompress_dataset", "to_explicit_vr_little_endian"]

# Bytes per value of the VRs whose values pydicom keeps as raw bytes in the file's byte order.
_VALUE_WIDTHS: Final = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def can_transcode(transfer_syntax_uid: str) -> bool:
    """Whether objects stored in ``transfer_syntax_uid`` can be re-encoded here: every native
    syntax, and the compressed ones for which a decoder plugin is installed (not video)."""
    try:
        return bool(get_decoder(UID(transfer_syntax_uid)).is_available)
    except NotImplementedError:
        return False


def decompress_dataset(ds: Dataset) -> None:
    """Decompress ``ds`` in place (colour as RGB) keeping its SOP Instance UID; a native
    object is left as it is. Undecodable pixel data is the object's fault: ``InvalidDicom``."""
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if not syntax.is_encapsulated:
        return
    try:
        ds.decompress(generate_instance_uid=False)
    # the decoding plugins raise whatever their libraries raise
    except Exception as exc:
        raise InvalidDicom(
            f"SOP Instance {ds.get('SOPInstanceUID', '?')}: its {syntax.name} pixel data "
            f"cannot be decompressed ({type(exc).__name__}: {exc})"
        ) from exc


def to_explicit_vr_little_endian(data: bytes) -> bytes:
    """The Part 10 object ``data`` in Explicit VR Little Endian (``data`` itself if it is)."""
    ds = read_dataset(data, source="stored object")
    syntax = UID(ds.file_meta.get("TransferSyntaxUID") or "")
    if not syntax:
        raise InvalidDicom("the object has no TransferSyntaxUID in its file meta")
    if syntax == ExplicitVRLittleEndian:
        return data
    if syntax.is_encapsulated:
        decompress_dataset(ds)
    elif not syntax.is_little_endian:
        _swap_to_little_endian(ds)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _swap_to_little_endian(ds: Dataset) -> None:
    """Reverse the byte order of the values pydicom does not decode (Explicit VR Big Endian,
    retired but still found in old archives); UN values are left, their structure unknown.

    Pixel Data is swapped per pixel value (Bits Allocated), as pydicom itself reads it; only
    8-bit values in OW are swapped pairwise, the words they were packed into.
    """

    def swap(dataset: Dataset, element: DataElement) -> None:
        width = _VALUE_WIDTHS.get(str(element.VR), 1)
        # the dataset that holds the element: an icon image has its own Bits Allocated
        bits_allocated = int(dataset.get("BitsAllocated") or 0)
        if element.tag == 0x7FE00010 and bits_allocated >= 16:
            width = bits_allocated // 8
        value = element.value
        if width == 1 or not value:
            return
        if len(value) % width:
            raise InvalidDicom(
                f"element {element.tag} ({element.VR}) holds {len(value)} bytes, "
                f"not a whole number of {width}-byte values"
            )
        big_endian = np.frombuffer(value, dtype=f">u{width}")
        element.value = big_endian.astype(f"<u{width}").tobytes()

    ds.walk(swap)
