"""Debian's Orthanc as a peer in tests: started on free loopback ports with a throwaway storage
folder and no users of its own, so nothing but the test can reach it."""

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port, wait_until

ORTHANC = Path("/usr/sbin/Orthanc")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass
class Orthanc:
    """A running Orthanc, a client for its REST API, its DICOM port and its log."""

    api: httpx.Client
    log: Path
    dicom_port: int
    ae_title: str

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST JSON and return the JSON answer; Orthanc's log says what the peer answered."""
        response = self.api.post(path, json=body)
        assert response.status_code == 200, f"{response.text}\n{self.tail()}"
        return response.json()

    def sop_instance_uid(self, instance_id: str) -> str:
        tags = self.api.get(f"/instances/{instance_id}/simplified-tags").json()
        return str(tags["SOPInstanceUID"])

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/system").status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running_orthanc(workdir: Path, settings: dict[str, Any]) -> Iterator[Orthanc]:
    """Orthanc with ``settings`` over the private defaults; skipped where it is not installed."""
    if not ORTHANC.exists():
        pytest.skip(f"{ORTHANC} is missing (make test installs the Debian package orthanc)")
    http_port, dicom_port = free_port(), free_port()
    config: dict[str, Any] = {
        "Name": "kaapana-interop",
        "StorageDirectory": str(workdir / "storage"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpTimeout": 20,
        **settings,
    }
    path = workdir / "orthanc.json"
    path.write_text(json.dumps(config))
    log = workdir / "orthanc.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ORTHANC), "--verbose", str(path)],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as api:
            wait_until(
                lambda: process.poll() is not None or _answers(api), START_TIMEOUT, "Orthanc"
            )
            assert process.poll() is None, log.read_text(errors="replace")
            yield Orthanc(api, log, dicom_port, str(config["DicomAet"]))
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
