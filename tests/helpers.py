"""Small helpers for tests: DICOM bytes, DCMTK paths, free ports, waiting."""

import io
import shutil
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import Dataset

DCMTK_DIR = Path("/usr/bin")


def dcmtk(tool: str) -> str:
    """DCMTK's own binary (pynetdicom installs Python scripts of the same names into the venv)."""
    path = DCMTK_DIR / tool
    if not path.exists():
        found = shutil.which(tool, path="/usr/local/bin:/usr/bin")
        if found is None:
            pytest.skip(f"DCMTK tool {tool} is not installed (make test installs dcmtk)")
        return found
    return str(path)


DCMTK_ENV = {"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}


def part10(ds: Dataset) -> bytes:
    """Part 10 bytes of ``ds``; tests write invalid values on purpose, so no validation warnings."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
