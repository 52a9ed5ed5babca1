"""Orthanc's DICOMweb plugin as a peer: it queries and retrieves from a project, and stores into it.

Orthanc is the archive sites most often run next to kaapana, and its DICOMweb client is a
second, independent reading of PS3.18 (HTTP Basic only, its own Accept headers and multipart
framing), so these tests check the wire format against a real implementation rather than
against our own. Orthanc runs on loopback only, with a throwaway storage folder, and reaches the
``live`` server through its ``DicomWeb.Servers`` entry ``kaapana``, which points at project A
and authenticates as ``pi_a`` with an API token as the Basic password.
"""

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from kaapana.testing import ct_series
from tests.api.conftest import Live
from tests.helpers import part10
from tests.orthanc import Orthanc, running_orthanc

pytestmark = [pytest.mark.interop, pytest.mark.slow]

# Debian's orthanc-dicomweb links its versioned library (libOrthancDicomWeb.so.1.7) here.
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
PEER = "kaapana"


@pytest.fixture
def orthanc(live: Live, tmp_path: Path) -> Iterator[Orthanc]:
    if not DICOMWEB_PLUGIN.exists():
        pytest.skip(f"{DICOMWEB_PLUGIN} is missing (make test installs orthanc-dicomweb)")
    live.site.headers("pi_a")  # issues pi_a's token with write scope
    peer_url = live.url + "/dicomweb/projects/A/"
    settings = {
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "Servers": {
                # Any username: kaapana reads the API token from the Basic password.
                PEER: {
                    "Url": peer_url,
                    "Username": "orthanc",
                    "Password": live.site.tokens["pi_a"],
                },
            },
        },
    }
    with running_orthanc(tmp_path, settings) as running:
        yield running


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
