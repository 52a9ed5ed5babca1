"""Orthanc's DICOMweb plugin as a peer: it queries and retrieves from a project, and stores into it.

Orthanc is the archive sites most often run next to kaapana, and its DICOMweb client is a
second, independent reading of PS3.18 (HTTP Basic only, its own Accept headers and multipart
framing), so these tests check the wire format against a real implementation rather than
against our own. Orthanc runs on loopback only, with a throwaway storage folder, and reaches the
``live`` server through its ``DicomWeb.Servers`` entry ``kaapana``, which points at project A
and authenticates as ``pi_a`` with an API token as the Basic password.
"""

import io
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydicom import dcmread

from kaapana.testing import ct_series
from tests.api.conftest import Live
from tests.helpers import free_port, part10, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ORTHANC = Path("/usr/sbin/Orthanc")
# Debian's orthanc-dicomweb links its versioned library (libOrthancDicomWeb.so.1.7) here.
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
PEER = "kaapana"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass
class Orthanc:
    """A running Orthanc, a client for its REST API, and its log for failure messages."""

    api: httpx.Client
    log: Path

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


def _config(workdir: Path, http_port: int, peer_url: str, token: str) -> dict[str, Any]:
    """Loopback only and without users of its own: nothing but this test can reach it."""
    return {
        "Name": "kaapana-interop",
        "StorageDirectory": str(workdir / "storage"),
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "HttpPort": http_port,
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpTimeout": 20,
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "Servers": {
                # Any username: kaapana reads the API token from the Basic password.
                PEER: {"Url": peer_url, "Username": "orthanc", "Password": token},
            },
        },
    }


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/system").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def orthanc(live: Live, tmp_path: Path) -> Iterator[Orthanc]:
    if not ORTHANC.exists():
        pytest.skip(f"{ORTHANC} is missing (make test installs the Debian package orthanc)")
    if not DICOMWEB_PLUGIN.exists():
        pytest.skip(f"{DICOMWEB_PLUGIN} is missing (make test installs orthanc-dicomweb)")
    live.site.headers("pi_a")  # issues pi_a's token with write scope
    http_port = free_port()
    config = tmp_path / "orthanc.json"
    peer_url = live.url + "/dicomweb/projects/A/"
    config.write_text(json.dumps(_config(tmp_path, http_port, peer_url, live.site.tokens["pi_a"])))
    log = tmp_path / "orthanc.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ORTHANC), "--verbose", str(config)],
            cwd=tmp_path,
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
            yield Orthanc(api, log)
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def test_orthanc_queries_and_retrieves_a_project_study(live: Live, orthanc: Orthanc) -> None:
    study = live.site.study_a
    study_uid = study[0].StudyInstanceUID
    # /qido parses our DICOM JSON on Orthanc's side, so this checks more than reachability.
    found = orthanc.post(
        f"/dicom-web/servers/{PEER}/qido", {"Uri": "/studies", "Arguments": {"PatientID": "PA"}}
    )
    assert [entry["0020000D"]["Value"] for entry in found] == [study_uid]

    retrieved = orthanc.post(
        f"/dicom-web/servers/{PEER}/retrieve", {"Resources": [{"Study": study_uid}]}
    )
    assert int(retrieved["ReceivedInstancesCount"]) == len(study)
    instance_ids = orthanc.api.get("/instances").json()
    assert len(instance_ids) == len(study)
    by_sop_uid = {
        orthanc.sop_instance_uid(instance_id): instance_id for instance_id in instance_ids
    }
    assert set(by_sop_uid) == {ds.SOPInstanceUID for ds in study}
    first = study[0]
    file = orthanc.api.get(f"/instances/{by_sop_uid[first.SOPInstanceUID]}/file")
    np.testing.assert_array_equal(dcmread(io.BytesIO(file.content)).pixel_array, first.pixel_array)


def test_orthanc_stores_a_study_into_the_project(live: Live, orthanc: Orthanc) -> None:
    series = ct_series(patient_id="PORTH", rows=32, columns=32, slices=3, seed=5)
    study_uid = series[0].StudyInstanceUID
    for ds in series:
        uploaded = orthanc.api.post("/instances", content=part10(ds))
        assert uploaded.status_code == 200, uploaded.text
    orthanc_study = uploaded.json()["ParentStudy"]

    sent = orthanc.api.post(f"/dicom-web/servers/{PEER}/stow", json={"Resources": [orthanc_study]})
    assert sent.status_code == 200, f"{sent.text}\n{orthanc.tail()}"
    assert int(sent.json()["InstancesCount"]) == len(series)

    site = live.site
    studies = site.get("/dicomweb/projects/A/studies", params={"PatientID": "PORTH"}).json()
    assert [entry["0020000D"]["Value"] for entry in studies] == [[study_uid]]
    assert studies[0]["00201208"]["Value"] == [len(series)]
    instances = site.get(f"/dicomweb/projects/A/studies/{study_uid}/instances").json()
    assert {entry["00080018"]["Value"][0] for entry in instances} == {
        ds.SOPInstanceUID for ds in series
    }
    assert site.get("/dicomweb/projects/B/studies", params={"PatientID": "PORTH"}).json() == []
    first = series[0]
    stored = live.client("pi_a", root="/dicomweb/projects/A").retrieve_instance(
        study_uid, first.SeriesInstanceUID, first.SOPInstanceUID
    )
    np.testing.assert_array_equal(stored.pixel_array, first.pixel_array)
