"""``kaapana serve`` as a user runs it: a subprocess with receiver processes, stopped and killed."""

import hashlib
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from sqlalchemy import select

from kaapana.config import Settings
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance
from kaapana.platform import Platform
from kaapana.testing.synthetic import ct_series, write_datasets
from tests.helpers import (
    DCMTK_ENV,
    dcmtk,
    free_port,
    port_open,
    self_signed_certificate,
    wait_until,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]


@dataclass
class Server:
    process: subprocess.Popen[str]
    data_dir: Path
    dicom_port: int
    http_port: int


def start_server(data_dir: Path, workers: int = 2, **settings: str) -> Server:
    dicom_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "KAAPANA_DATA_DIR": str(data_dir),
        "KAAPANA_DICOM_WORKERS": str(workers),
        "KAAPANA_SERIES_QUIET_SECONDS": "1",
        **{f"KAAPANA_{name.upper()}": value for name, value in settings.items()},
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kaapana",
            "serve",
            "--dicom-port",
            str(dicom_port),
            "--http-port",
            str(http_port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    server = Server(process, data_dir, dicom_port, http_port)
    wait_until(lambda: port_open(http_port) or process.poll() is not None, 120, "kaapana serve")
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    # C-ECHO, not a bare connect: a connection without an association holds shutdown until
    # pynetdicom's ACSE timeout.
    wait_until(lambda: dicom_echo(dicom_port), 30, "a C-ECHO answer")
    return server


def dicom_echo(port: int) -> bool:
    echo = [dcmtk("echoscu"), "-aec", "KAAPANA", "127.0.0.1", str(port)]
    return subprocess.run(echo, env=DCMTK_ENV, capture_output=True, timeout=30).returncode == 0


def stop(server: Server, sig: int = signal.SIGINT) -> str:
    os.killpg(server.process.pid, sig)
    output, _ = server.process.communicate(timeout=60)
    return output


def storescu_folder(server: Server, folder: Path, *options: str) -> list[str]:
    """DCMTK storescu sending a folder tree to the server over one association."""
    port = str(server.dicom_port)
    return [
        dcmtk("storescu"),
        *options,
        "-aec",
        "KAAPANA",
        "+sd",
        "+r",
        "127.0.0.1",
        port,
        str(folder),
    ]


@pytest.fixture
def series_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "series"
    write_datasets(ct_series(rows=128, columns=128, slices=200, seed=7), folder)
    return folder


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers a test starts; whatever still runs at the end is killed, even after a failure."""
    started: list[Server] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            stop(running, signal.SIGKILL)


ADMIN_PASSWORD = "serve-admin-password"


def test_serve_answers_https_and_dicom_and_stops_gracefully(
    tmp_path: Path, servers: list[Server], series_dir: Path
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    server = start_server(
        tmp_path / "data",
        tls_certfile=str(cert),
        tls_keyfile=str(key),
        admin_password=ADMIN_PASSWORD,
    )
    servers.append(server)
    https = httpx.Client(
        base_url=f"https://127.0.0.1:{server.http_port}",
        verify=ssl.create_default_context(cafile=cert),
    )
    assert https.get("/healthz", timeout=10).json()["status"] == "ok"
    assert https.get("/api/v1/studies").status_code == 401
    store = subprocess.run(
        storescu_folder(server, series_dir),
        env=DCMTK_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert store.returncode == 0, store.stderr
    login = https.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert login.status_code == 200
    assert "secure" in login.headers["set-cookie"].lower()  # served over TLS

    # Each instance was acknowledged once durable; the index follows a moment later.
    def studies() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = https.get("/api/v1/studies", timeout=10).json()["items"]
        return items

    wait_until(
        lambda: [s["number_of_study_related_instances"] for s in studies()] == [200],
        what="the 200 acknowledged instances in the index",
    )
    (study,) = studies()
    assert study["modalities_in_study"] == ["CT"]
    # Over TLS the kernel cannot send files itself: the series streams through Python.
    (series,) = https.get(f"/api/v1/studies/{study['study_instance_uid']}/series").json()["items"]
    retrieved = https.get(
        f"/dicomweb/studies/{study['study_instance_uid']}/series/{series['series_instance_uid']}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        timeout=60,
    )
    assert retrieved.status_code == 200
    https.close()
    output = stop(server)
    # 130, the shell's code for Ctrl-C, after a clean stop; one loaded run ended with 0, also
    # after a clean stop, which only the output tells apart.
    assert server.process.returncode in (0, 130), output[-3000:]
    assert "pending index writes committed" in output
    with (
        Platform(Settings(data_dir=tmp_path / "data")) as platform,
        session_factory(platform.engine)() as session,
    ):
        stored = session.scalars(select(Instance.sha256)).all()
    assert sorted(_digests(_part_bodies(retrieved))) == sorted(stored)


def _part_bodies(response: httpx.Response) -> list[bytes]:
    boundary = re.search(r'boundary="?([^";]+)', response.headers["content-type"])
    assert boundary is not None
    delimiter = b"\r\n--" + boundary.group(1).encode()
    pieces = (b"\r\n" + response.content).split(delimiter)
    assert pieces[0] == b"" and pieces[-1] == b"--\r\n"
    return [piece.partition(b"\r\n\r\n")[2] for piece in pieces[1:-1]]


def _digests(bodies: Iterator[bytes] | list[bytes]) -> list[str]:
    return [hashlib.sha256(body).hexdigest() for body in bodies]


def _acknowledged(storescu_log: str) -> list[str]:
    """Files for which storescu received a success response (its -v output pairs them)."""
    acknowledged = []
    current = None
    for line in storescu_log.splitlines():
        sending = re.search(r"Sending file: (\S+)", line)
        if sending:
            current = sending.group(1)
        elif "Received Store Response (Success)" in line and current:
            acknowledged.append(current)
            current = None
    return acknowledged


def test_kill_9_during_ingest_loses_no_acknowledged_instance(
    tmp_path: Path, series_dir: Path, servers: list[Server]
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, admin_password=ADMIN_PASSWORD)
    servers.append(server)
    log_path = tmp_path / "storescu.log"
    with log_path.open("w") as log:
        client = subprocess.Popen(
            storescu_folder(server, series_dir, "-v"),
            env=DCMTK_ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: len(_acknowledged(log_path.read_text())) >= 40, 60, "40 stored")
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.communicate(timeout=30)
        client.wait(timeout=60)
    acknowledged = _acknowledged(log_path.read_text())
    assert 40 <= len(acknowledged) < 200, "the kill must land in the middle of the ingest"

    restarted = start_server(data_dir)  # migrations and start-up must cope with the crash
    servers.append(restarted)
    retrieved = _retrieve_series(restarted, pydicom.dcmread(acknowledged[0]))
    output = stop(restarted, signal.SIGTERM)  # as a service manager stops it
    assert restarted.process.returncode == 0
    assert "pending index writes committed" in output
    assert _running_in_group(restarted.process.pid) == []  # the receivers ended with it
    with Platform(Settings(data_dir=data_dir)) as platform:
        with session_factory(platform.engine)() as session:
            rows = {row.sop_instance_uid: row for row in session.scalars(select(Instance))}
        for path in acknowledged:
            original = pydicom.dcmread(path)
            row = rows[original.SOPInstanceUID]
            stored = pydicom.dcmread(platform.store.local_path(row.storage_key))
            assert stored.PixelData == original.PixelData
            assert stored == original
        for row in rows.values():  # nothing in the index without its file, intact
            data = platform.store.get(row.storage_key)
            assert hashlib.sha256(data).hexdigest() == row.sha256
    # Over plain HTTP the stored files go out by sendfile, each exactly as stored.
    assert sorted(_digests(retrieved)) == sorted(row.sha256 for row in rows.values())


def _running_in_group(pgid: int) -> list[int]:
    """Processes of the group that still run (exited ones may wait for init to reap them)."""
    running = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # after the command's closing parenthesis: state, ppid, pgrp
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            running.append(int(entry.name))
    return running


def _retrieve_series(server: Server, ds: pydicom.Dataset) -> list[bytes]:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=60) as http:
        login = {"username": "admin", "password": ADMIN_PASSWORD}
        assert http.post("/api/v1/auth/login", json=login).status_code == 200
        retrieved = http.get(
            f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}",
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
    assert retrieved.status_code == 200
    return _part_bodies(retrieved)
