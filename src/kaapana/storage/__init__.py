"""Object storage for DICOM files and results, behind one small protocol."""

from kaapana.storage.base import ObjectStore, validate_key
from kaapana.storage.filesystem import FilesystemStore

__all__ = ["FilesystemStore", "ObjectStore", "validate_key"]
