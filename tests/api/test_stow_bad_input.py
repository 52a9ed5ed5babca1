"""STOW-RS refuses what it cannot take, says why, and never lets a bad part block good ones."""

from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file

from kaapana.testing import ct_series
from tests.api.conftest import Site
from tests.helpers import part10

BOUNDARY = "b0undary"
MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _body(*parts: tuple[str, bytes]) -> bytes:
    chunks = [
        f"--{BOUNDARY}\r\nContent-Type: {media_type}\r\n\r\n".encode() + data + b"\r\n"
        for media_type, data in parts
    ]
    return b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()


def _post(site: Site, body: bytes, content_type: str | None = MULTIPART, path: str = "") -> object:
    headers = site.headers("pi_a")
    if content_type is not None:
        headers["Content-Type"] = content_type
    return site.client.post(f"/dicomweb/projects/A/studies{path}", content=body, headers=headers)


def _count(site: Site) -> int:
    return len(site.get("/dicomweb/projects/A/instances", "pi_a").json())


def test_a_bad_part_fails_alone(site: Site) -> None:
    good = ct_series(patient_id="PGOOD", rows=16, columns=16, slices=2, seed=3)
    truncated = part10(good[1])[:300]
    before = _count(site)
    answer = _post(
        site,
        _body(
            ("application/dicom", part10(good[0])),
            ("text/plain", b"hello"),
            ("application/dicom", truncated),
        ),
    )
    assert answer.status_code == 202, answer.text
    result = answer.json()
    assert len(result["00081199"]["Value"]) == 1  # ReferencedSOPSequence
    failed = result["00081198"]["Value"]  # FailedSOPSequence
    assert [item["00081197"]["Value"][0] for item in failed] == [0xC000, 0xC000]
    assert "text/plain" in answer.headers["warning"]
    assert _count(site) == before + 1


def test_all_failed_is_409_and_stores_nothing(site: Site) -> None:
    before = _count(site)
    answer = _post(site, _body(("application/dicom", b"DICM but not really")))
    assert answer.status_code == 409
    assert answer.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]
    assert _count(site) == before


def test_instances_of_another_study_than_the_path_are_reported(site: Site) -> None:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    data = Path(path).read_bytes()
    answer = _post(site, _body(("application/dicom", data)), path="/1.2.3.4")
    assert answer.status_code == 409
    item = answer.json()["00081198"]["Value"][0]
    assert item["00081155"]["Value"] == [dcmread(path).SOPInstanceUID]
    assert item["00081197"]["Value"] == [0xA900]
    assert (
        site.get(
            "/dicomweb/instances", params={"SOPInstanceUID": item["00081155"]["Value"][0]}
        ).json()
        == []
    )


def test_wrong_content_types_are_415(site: Site) -> None:
    body = _body(("application/dicom", b"x"))
    for content_type, status in (
        (None, 415),
        ("application/dicom", 415),
        (f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}', 415),
        ('multipart/related; type="application/dicom"', 400),  # no boundary
        ("multipart/related; boundary=", 400),
    ):
        answer = _post(site, body, content_type)
        assert answer.status_code == status, (content_type, answer.text)
        assert answer.json()["detail"]


def test_malformed_and_empty_bodies_are_400(site: Site) -> None:
    unterminated = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\nabc".encode()
    answer = _post(site, unterminated)
    assert answer.status_code == 400 and "multipart" in answer.json()["detail"].lower()
    assert _post(site, f"--{BOUNDARY}--\r\n".encode()).status_code == 400


def test_oversize_uploads_are_413_before_reading(site: Site) -> None:
    site.platform.settings.__dict__["stow_max_bytes"] = 2048
    before = _count(site)
    big = ct_series(patient_id="PBIG", rows=64, columns=64, slices=1, seed=4)[0]
    answer = _post(site, _body(("application/dicom", part10(big))))
    assert answer.status_code == 413
    assert "at most 2048" in answer.json()["detail"]
    assert _count(site) == before


def test_a_repeated_instance_and_more_parts_than_a_batch_are_all_answered(site: Site) -> None:
    series = ct_series(patient_id="PMANY", rows=16, columns=16, slices=40, seed=4)
    first = ("application/dicom", part10(series[0]))
    before = _count(site)
    answer = _post(
        site, _body(first, *(("application/dicom", part10(ds)) for ds in series[1:]), first)
    )
    assert answer.status_code == 200, answer.text
    referenced = answer.json()["00081199"]["Value"]
    assert [item["00081155"]["Value"][0] for item in referenced] == [
        ds.SOPInstanceUID for ds in [*series, series[0]]
    ]
    assert _count(site) == before + 40
    # The same instance twice within one batch: stored once, answered twice.
    again = ct_series(patient_id="PAGAIN", rows=16, columns=16, slices=2, seed=5)
    twice = ("application/dicom", part10(again[0]))
    answer = _post(site, _body(twice, ("application/dicom", part10(again[1])), twice))
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["00081199"]["Value"]) == 3
    assert _count(site) == before + 42
