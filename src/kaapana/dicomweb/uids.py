"""UIDs in DICOMweb paths and queries: checked before they reach the index or a storage key."""

from kaapana.archive.metadata import UID_PATTERN
from kaapana.errors import InvalidInput


def check_uid(value: str, *, field: str = "UID") -> str:
    uid = value.strip()
    if len(uid) > 64 or not UID_PATTERN.match(uid):
        raise InvalidInput(f"{field} is not a valid UID: {value[:80]!r}")
    return uid


__all__ = ["check_uid"]
