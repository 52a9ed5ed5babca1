"""WADO-RS and STOW-RS through dicomweb-client, the library scripts and notebooks use."""

import io

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread, dcmwrite
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless
from pydicom.uid import JPEGBaseline8Bit as JPEG
from requests import HTTPError

from kaapana.testing import ct_series
from tests.api.conftest import Live


def test_retrieve_study_series_instance_metadata(live: Live) -> None:
    client = live.client("sci_a")
    ds0 = live.site.study_a[0]
    study = client.retrieve_study(ds0.StudyInstanceUID)
    assert len(study) == 6
    assert {d.SOPInstanceUID for d in study} == {d.SOPInstanceUID for d in live.site.study_a}
    series = client.retrieve_series(ds0.StudyInstanceUID, ds0.SeriesInstanceUID)
    assert [d.InstanceNumber for d in series] == [1, 2, 3, 4]
    np.testing.assert_array_equal(series[0].pixel_array, ds0.pixel_array)
    stored = live.site.platform.store
    key = f"dicom/{ds0.StudyInstanceUID}/{ds0.SeriesInstanceUID}/{ds0.SOPInstanceUID}.dcm"
    raw = client.retrieve_instance(
        ds0.StudyInstanceUID,
        ds0.SeriesInstanceUID,
        ds0.SOPInstanceUID,
        media_types=(("application/dicom", "*"),),
    )
    buffer = io.BytesIO()
    raw.save_as(buffer)
    assert raw.SOPInstanceUID == ds0.SOPInstanceUID
    assert len(stored.get(key)) > 0
    metadata = client.retrieve_series_metadata(ds0.StudyInstanceUID, ds0.SeriesInstanceUID)
    assert len(metadata) == 4
    uri = metadata[0]["7FE00010"]["BulkDataURI"]
    assert uri.startswith(live.url + "/dicomweb/studies/")
    pixels = client.retrieve_bulkdata(uri)
    assert b"".join(pixels) == ds0.PixelData
    study_metadata = client.retrieve_study_metadata(ds0.StudyInstanceUID)
    assert len(study_metadata) == 6


def test_frames_rendered_and_thumbnails(live: Live) -> None:
    client = live.client()
    ds0 = live.site.study_a[0]
    uids = (ds0.StudyInstanceUID, ds0.SeriesInstanceUID, ds0.SOPInstanceUID)
    frames = client.retrieve_instance_frames(*uids, frame_numbers=[1])
    assert frames[0] == ds0.PixelData
    rendered = client.retrieve_instance_rendered(
        *uids, media_types=("image/png",), params={"window": "40,400", "viewport": "16,16"}
    )
    image = Image.open(io.BytesIO(rendered))
    assert image.format == "PNG" and image.size == (16, 16)
    series_thumbnail = (
        f"/dicomweb/studies/{ds0.StudyInstanceUID}/series/{ds0.SeriesInstanceUID}/thumbnail"
    )
    thumb = live.site.get(series_thumbnail, params={"size": "128"})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (128, 128)
    stored = live.site.get(series_thumbnail)  # no size asked: the catalog's stored PNG
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(stored.content)).size == (256, 256)
    study_thumb = live.site.get(f"/dicomweb/studies/{ds0.StudyInstanceUID}/thumbnail")
    assert study_thumb.status_code == 200


def test_compressed_objects_as_stored_transcoded_or_refused(live: Live) -> None:
    path = get_testdata_file("MR_small_jp2klossless.dcm")
    assert path is not None
    original = dcmread(path)
    client = live.client()
    client.store_instances([original])
    uids = (original.StudyInstanceUID, original.SeriesInstanceUID, original.SOPInstanceUID)
    as_stored = client.retrieve_instance(*uids, media_types=(("application/dicom", "*"),))
    assert as_stored.file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert as_stored.PixelData == original.PixelData
    asked = client.retrieve_instance(
        *uids, media_types=(("application/dicom", ExplicitVRLittleEndian),)
    )
    assert asked.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    np.testing.assert_array_equal(asked.pixel_array, original.pixel_array)
    default = live.site.get(  # no transfer syntax named: PS3.18's default, Explicit VR LE
        f"/dicomweb/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
    )
    assert "transfer-syntax=1.2.840.10008.1.2.1" in default.text[:400]
    frame = client.retrieve_instance_frames(
        *uids, frame_numbers=[1], media_types=(("image/jp2", JPEG2000Lossless),)
    )
    assert frame[0].startswith(b"\xff\x4f\xff\x51")  # a JPEG 2000 codestream, untouched
    other = live.site.get(
        f"/dicomweb/studies/{uids[0]}",
        headers={"Accept": f'multipart/related; type="application/dicom"; transfer-syntax={JPEG}'},
    )
    assert other.status_code == 406
    assert "transfer-syntax=*" in other.json()["detail"]


def test_store_reports_each_part_and_keeps_the_good_ones(live: Live) -> None:
    new = ct_series(patient_id="PNEW", rows=16, columns=16, slices=2, seed=9)
    client = live.client("sci_a", root="/dicomweb/projects/A")
    answer = client.store_instances(new)
    referenced = answer.ReferencedSOPSequence
    assert {item.ReferencedSOPInstanceUID for item in referenced} == {d.SOPInstanceUID for d in new}
    assert "FailedSOPSequence" not in answer
    found = live.client("pi_a").search_for_studies(search_filters={"PatientID": "PNEW"})
    assert len(found) == 1
    assert live.client("sci_b").search_for_studies(search_filters={"PatientID": "PNEW"}) == []
    key = f"dicom/{new[0].StudyInstanceUID}/{new[0].SeriesInstanceUID}/{new[0].SOPInstanceUID}.dcm"
    stored = live.site.platform.store.get(key)
    sent = io.BytesIO()
    dcmwrite(sent, new[0])  # as dicomweb-client encodes it: file meta without preamble
    assert stored == b"\x00" * 128 + b"DICM" + sent.getvalue()


def test_store_by_a_read_only_token_is_refused(live: Live) -> None:
    site = live.site
    user = site.platform.auth.users.get("pi_a")
    token = site.platform.auth.tokens.issue(user, name="ro", can_write=False).secret
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(
        live.url + "/dicomweb/projects/A", headers={"Authorization": f"Bearer {token}"}
    )
    with pytest.raises(HTTPError) as raised:
        client.store_instances(ct_series(patient_id="PRO", rows=16, columns=16, slices=1))
    assert raised.value.response.status_code == 403


def test_delete_series_then_study(live: Live) -> None:
    ds0 = live.site.study_a[0]
    scientist = live.site.client.delete(
        f"/dicomweb/studies/{ds0.StudyInstanceUID}", headers=live.site.headers("sci_a")
    )
    assert scientist.status_code == 403
    other = live.site.client.delete(
        f"/dicomweb/studies/{ds0.StudyInstanceUID}", headers=live.site.headers("sci_b")
    )
    assert other.status_code == 404
    pi = live.client("pi_a")
    pi.delete_series(ds0.StudyInstanceUID, ds0.SeriesInstanceUID)
    remaining = pi.search_for_series(ds0.StudyInstanceUID)
    assert [s["00080060"]["Value"][0] for s in remaining] == ["MR"]
    key = f"dicom/{ds0.StudyInstanceUID}/{ds0.SeriesInstanceUID}/{ds0.SOPInstanceUID}.dcm"
    assert not live.site.platform.store.exists(key)  # no other project held it
    pi.delete_study(ds0.StudyInstanceUID)
    assert pi.search_for_studies() == []
    actions = [e.action for e in live.site.platform.auth.audit.query(actor="pi_a")]
    assert actions.count("delete") == 2
