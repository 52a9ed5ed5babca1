"""The viewer and upload pages, the zip import, NIfTI upload and zip download endpoints,
through the real app: access, scoping, escaping and refusals that change nothing."""

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kaapana.testing import ct_series
from tests.helpers import part10
from tests.web.conftest import HOSTILE_NAME, login
from tests.web.test_catalog_pages import client_data, series_of

# What does not depend on the database engine runs on SQLite alone (parametrizing the test
# shadows the engine-parametrized fixture); the downloads' queries run on both.
SQLITE_ONLY = pytest.mark.parametrize("database_url", [None], ids=["sqlite"])


@SQLITE_ONLY
def test_the_viewer_and_upload_pages(web: TestClient) -> None:
    csrf = login(web, "sci_a")
    uid = series_of(web, "A", csrf)[0]
    response = web.get(f"/p/A/series/{uid}")
    assert response.status_code == 200, response.text
    assert HOSTILE_NAME not in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
    data = client_data(response.text)
    assert data["series"]["series_instance_uid"] == uid  # type: ignore[index]
    assert data["image"]["series_instance_uid"] == uid  # type: ignore[index]
    assert data["keywords"]["00100010"] == "PatientName"  # type: ignore[index]
    other = series_of(web, "A", csrf)[0]
    login(web, "sci_b")
    assert web.get(f"/p/A/series/{other}").status_code == 404
    assert web.get(f"/p/B/series/{other}").status_code == 404
    assert web.get("/p/B/upload").status_code == 200
    login(web, "sci_a")
    response = web.get("/p/A/upload")
    assert response.status_code == 200
    assert client_data(response.text) == {"project": "A", "nifti": True}
    assert web.get("/p/B/upload").status_code == 404


def _zip(datasets: list) -> bytes:  # type: ignore[type-arg]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for ds in datasets:
            out.writestr(f"x/{ds.SOPInstanceUID}.dcm", part10(ds))
        out.writestr("x/readme.txt", "not DICOM")
    return buffer.getvalue()


@SQLITE_ONLY
def test_a_zip_import_reports_every_member_and_refuses_what_is_no_zip(web: TestClient) -> None:
    csrf = login(web, "sci_a")
    ct = ct_series(patient_id="PZ", rows=16, columns=16, slices=2, seed=11)
    path = "/api/v1/projects/A/imports"
    zip_type = {"Content-Type": "application/zip", **csrf}
    answer = web.post(path, content=_zip(ct), headers=zip_type)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["skipped"], body["rejected"]) == (2, 1, 0)
    assert sorted(o["name"] for o in body["outcomes"])[-1] == "x/readme.txt"
    assert ct[0].SeriesInstanceUID in series_of(web, "A", csrf)
    assert web.post(path, content=b"PK nonsense", headers=zip_type).status_code == 400
    wrong_type = {"Content-Type": "text/plain", **csrf}
    assert web.post(path, content=_zip(ct), headers=wrong_type).status_code == 415
    assert (
        web.post(path, content=_zip(ct), headers={"Content-Type": "application/zip"}).status_code
        == 403
    )
    assert (
        web.post("/api/v1/projects/B/imports", content=_zip(ct), headers=zip_type).status_code
        == 404
    )


def _nifti_body(files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = "nifti-boundary"
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Location: {name}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files.items()
    )
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/octet-stream"; boundary={boundary}'


@SQLITE_ONLY
def test_nifti_files_are_kept_and_import_nifti_starts_on_them(web: TestClient) -> None:
    csrf = login(web, "sci_a")
    body, content_type = _nifti_body({"case/liver.nii.gz": b"\x1f\x8b not really gzip"})
    answer = web.post(
        "/api/v1/projects/A/nifti-imports",
        content=body,
        headers={"Content-Type": content_type, **csrf},
    )
    assert answer.status_code == 201, answer.text
    run = answer.json()
    assert run["workflow"] == "import-nifti"
    folder = Path(run["params"]["source_dir"])
    assert (folder / "case" / "liver.nii.gz").read_bytes() == b"\x1f\x8b not really gzip"
    assert '"patient_id": "liver"' in (folder / "metadata.json").read_text()
    # the bytes are no NIfTI: stop the run rather than have it fail on a worker
    assert web.post(f"/api/v1/runs/{run['id']}/cancel", headers=csrf).status_code == 200

    escaping, content_type = _nifti_body({"../outside.nii": b"x"})
    refused = web.post(
        "/api/v1/projects/A/nifti-imports",
        content=escaping,
        headers={"Content-Type": content_type, **csrf},
    )
    assert refused.status_code == 400
    assert "not a relative path" in refused.json()["detail"]
    uploads = folder.parent
    assert sorted(p.name for p in uploads.iterdir()) == [folder.name]  # the refused one is gone


def test_zip_downloads_of_a_selection_and_a_dataset(web: TestClient) -> None:
    csrf = login(web, "sci_a")
    uids = series_of(web, "A", csrf)
    answer = web.post("/api/v1/projects/A/series/download", json={"series": uids[:1]}, headers=csrf)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as got:
        names = got.namelist()
        assert len(names) == 2 and all(f"/{uids[0]}/" in name for name in names)
        assert got.testzip() is None
    created = web.post(
        "/api/v1/projects/A/datasets", json={"name": "both", "series": uids}, headers=csrf
    )
    assert created.status_code == 201
    whole = web.get("/api/v1/projects/A/datasets/both/download")
    assert whole.status_code == 200
    assert 'filename="A-both.zip"' in whole.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(whole.content)) as got:
        assert len(got.namelist()) == 4
    login(web, "sci_b")
    other = web.post("/api/v1/projects/A/series/download", json={"series": uids[:1]}, headers=csrf)
    assert other.status_code in (403, 404)

    csrf = login(web, "sci_a")  # the gallery's form post, with the CSRF token as a field
    form = {"series": " ".join(uids[:1]), "csrf_token": csrf["X-CSRF-Token"]}
    answer = web.post("/p/A/download", data=form)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    forged = web.post("/p/A/download", data={"series": uids[0], "csrf_token": "guess"})
    assert forged.status_code == 403
    unknown = web.post("/p/A/download", data={**form, "series": "1.2.3.4"})
    assert unknown.status_code == 400
