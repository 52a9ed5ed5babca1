"""The storage protocol: what the archive needs from any backend (filesystem now, S3 later).

Keys are relative, slash-separated paths built from validated UIDs. ``validate_key`` is the last
line of defence: whatever reaches a backend can never name a place outside the store.
"""

import re
from collections.abc import Iterator, Sequence
from typing import BinaryIO, Protocol

from kaapana.errors import InvalidInput

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def validate_key(key: str) -> str:
    """Return ``key`` if every segment is a plain name; refuse traversal, NUL and absolute paths."""
    segments = key.split("/")
    if len(key) > 1024 or any(
        not _SEGMENT.match(segment) or segment in {".", ".."} for segment in segments
    ):
        raise InvalidInput(f"storage key {key[:200]!r} is not a safe relative path")
    return key


class ObjectStore(Protocol):
    """Durable, atomic storage of immutable byte objects."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` durably; readers see old or new, never half."""

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """``put`` for several objects, in order (a repeated key ends with its last data); all are
        durable when it returns. One round of syncs for the lot, not one per object."""

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object; raises ``NotFound``."""

    def get(self, key: str) -> bytes:
        """All bytes of the object; raises ``NotFound``."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    def size(self, key: str) -> int: ...

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key under ``prefix`` (for consistency checks)."""

    def local_path(self, key: str) -> str | None:
        """A filesystem path for zero-copy readers (sending a file), if the backend has one."""

    def remove_leftovers(self) -> int:
        """Delete temporary files of interrupted writes; return how many were removed."""


__all__ = ["ObjectStore", "validate_key"]
