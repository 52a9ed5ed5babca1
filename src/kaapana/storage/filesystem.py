"""The default backend: plain files, written so that a crash never leaves a half object.

Each put writes a uniquely named temp file beside the target, fsyncs it, renames it over the target
and fsyncs the directory, so after a success status the object survives ``kill -9`` and power loss.
``put_many`` does the same for a batch with one round of syncs.
"""

import functools
import os
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from kaapana.errors import NotFound
from kaapana.storage.base import validate_key

TEMP_SUFFIX = ".kp-tmp"
_SYNC_THREADS = 16


@functools.cache
def _syncers() -> ThreadPoolExecutor:
    """Threads that fsync the files of one ``put_many`` at the same time."""
    return ThreadPoolExecutor(max_workers=_SYNC_THREADS, thread_name_prefix="kaapana-fsync")


class FilesystemStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._root_text = str(self.root)
        self._known_dirs: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put(self, key: str, data: bytes) -> None:
        self.put_many([(key, data)])

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Write every object to a temp file, fsync them all (concurrently, so the file system
        commits them together), rename them into place in order, then fsync each folder once."""
        written: list[tuple[Path, Path]] = []
        fds: list[int] = []
        try:
            for key, data in items:
                target = self._path(key)
                directory = target.parent
                if directory not in self._known_dirs:
                    directory.mkdir(parents=True, exist_ok=True)
                    self._known_dirs.add(directory)
                temp = directory / f".{target.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                fds.append(fd)
                written.append((temp, target))
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            if len(fds) == 1:
                os.fsync(fds[0])
            else:
                list(_syncers().map(os.fsync, fds))
        except BaseException:
            for temp, _target in written:
                temp.unlink(missing_ok=True)
            raise
        finally:
            for fd in fds:
                os.close(fd)
        for temp, target in written:
            os.replace(temp, target)
        for directory in dict.fromkeys(target.parent for _temp, target in written):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"object {key!r} is not in storage") from exc

    def get(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"object {key!r} is not in storage") from exc

    def keys(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        for dirpath, _dirnames, filenames in os.walk(base):
            for name in filenames:
                if not name.endswith(TEMP_SUFFIX):
                    yield Path(dirpath, name).relative_to(self.root).as_posix()

    def local_path(self, key: str) -> str | None:
        # Plain strings: a series retrieval resolves hundreds of keys, pathlib costs 3x as much.
        return os.path.join(self._root_text, validate_key(key))

    def remove_leftovers(self) -> int:
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if name.endswith(TEMP_SUFFIX):
                    Path(dirpath, name).unlink(missing_ok=True)
                    removed += 1
        return removed


__all__ = ["TEMP_SUFFIX", "FilesystemStore"]
