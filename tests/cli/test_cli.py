"""The ``kaapana`` command as a user types it (in-process, through typer's runner)."""

import getpass
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from kaapana.cli import app
from kaapana.config import Settings
from kaapana.platform import Platform
from tests.helpers import DCMTK_ENV, dcmtk, free_port, port_open, wait_until

runner = CliRunner()


def kaapana(data_dir: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm"), folder / "nested" / "mr")
    (folder / "README.txt").write_text("not an image")
    truncated = Path(get_testdata_file("rtplan.dcm")).read_bytes()
    (folder / "nested" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + truncated[132:300])
    with zipfile.ZipFile(folder / "more.zip", "w") as archive:
        archive.write(get_testdata_file("JPEG2000.dcm"), "a/j2k.dcm")
        archive.writestr("a/notes.txt", "hello")
    return folder


def test_import_reports_each_outcome(tmp_path: Path, import_dir: Path) -> None:
    data = tmp_path / "data"
    output = kaapana(data, "import", "--json", str(import_dir), code=1)
    report = json.loads(output[output.index("{") :])
    assert report["accepted"] == 3
    assert report["skipped"] == 2
    assert [r["path"] for r in report["rejected"]] == [str(import_dir / "nested" / "broken.dcm")]
    assert report["rejected"][0]["reason"]
    again = kaapana(data, "import", "--json", str(import_dir / "ct.dcm"))
    assert json.loads(again[again.index("{") :])["duplicates"] == 1


def test_import_summary_table_and_missing_path(tmp_path: Path, import_dir: Path) -> None:
    output = kaapana(tmp_path / "data", "import", str(import_dir / "ct.dcm"))
    assert "accepted" in output and "import summary" in output
    missing = kaapana(tmp_path / "data", "import", str(tmp_path / "nope"), code=1)
    assert "neither a file nor a folder" in missing


def test_import_into_project_dataset(tmp_path: Path, import_dir: Path) -> None:
    data = tmp_path / "data"
    kaapana(data, "projects", "add", "liver", "--ae-title", "LIVER")
    kaapana(data, "import", "--project", "liver", "--dataset", "cohort", str(import_dir / "ct.dcm"))
    # Searchable at once: no server had to announce the series as arrived.
    found = json.loads(kaapana(data, "search", "--project", "liver", "--json", "-f", "Modality=CT"))
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert [item["series_instance_uid"] for item in found["items"]] == [ct.SeriesInstanceUID]
    listed = json.loads(kaapana(data, "projects", "list", "--json"))
    assert {"name": "liver", "ae_title": "LIVER", "description": ""} in listed
    unknown = kaapana(data, "import", "--project", "nope", str(import_dir / "ct.dcm"), code=1)
    assert "no project named 'nope'" in unknown


def test_check_reindexes_stray_files_and_reports_missing_ones(
    tmp_path: Path, import_dir: Path
) -> None:
    data = tmp_path / "data"
    kaapana(data, "import", str(import_dir / "ct.dcm"), str(import_dir / "nested" / "mr"))
    assert "consistent" in kaapana(data, "check")
    with Platform(Settings(data_dir=data)) as platform:
        keys = sorted(platform.store.keys("dicom"))
        mr_key = next(k for k in keys if "5962.1.2.4." in k)
        platform.store.delete(mr_key)
        stray = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))
        stray_key = f"dicom/{stray.StudyInstanceUID}/{stray.SeriesInstanceUID}/x.dcm"
        platform.store.put(stray_key, Path(get_testdata_file("JPEG2000.dcm")).read_bytes())
        leftover = Path(platform.store.local_path(keys[0])).with_name(".tmp.kp-tmp")
        leftover.write_bytes(b"half")
    report = json.loads(kaapana(data, "check", "--json", code=1))
    assert report["reindexed"] == [stray.SOPInstanceUID]
    assert report["missing_files"] == [
        pydicom.dcmread(get_testdata_file("MR_small.dcm")).SOPInstanceUID
    ]
    assert report["leftovers_removed"] == 1
    assert not leftover.exists()
    with Platform(Settings(data_dir=data)) as platform:
        assert not platform.store.exists(stray_key)  # moved to its proper key


def test_nodes_add_list_remove_and_validation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    kaapana(
        data, "nodes", "add", "pacs", "--ae-title", "PACS", "--host", "127.0.0.1", "--port", "104"
    )
    nodes = json.loads(kaapana(data, "nodes", "list", "--json"))
    assert [(n["name"], n["ae_title"], n["port"]) for n in nodes] == [("pacs", "PACS", 104)]
    duplicate = kaapana(
        data, "nodes", "add", "pacs", "--ae-title", "OTHER", "--host", "h", "--port", "1", code=1
    )
    assert "error" in duplicate
    bad_ae = kaapana(
        data, "nodes", "add", "x", "--ae-title", "A" * 17, "--host", "h", "--port", "1", code=1
    )
    assert "ae_title" in bad_ae
    kaapana(data, "nodes", "add", "y", "--ae-title", "Y", "--host", "h", "--port", "0", code=2)
    kaapana(data, "nodes", "remove", "pacs")
    assert json.loads(kaapana(data, "nodes", "list", "--json")) == []
    assert "no" in kaapana(data, "nodes", "remove", "pacs", code=1).lower()


@pytest.mark.interop
def test_echo_and_send_to_dcmtk_storescp(tmp_path: Path, import_dir: Path) -> None:
    data = tmp_path / "data"
    received = tmp_path / "received"
    received.mkdir()
    port = free_port()
    peer = subprocess.Popen(
        [dcmtk("storescp"), "+xa", "-aet", "PEER", "-od", str(received), "+B", str(port)],
        env=DCMTK_ENV,
    )
    try:
        wait_until(lambda: port_open(port), 10, "storescp")
        kaapana(
            data,
            "nodes",
            "add",
            "peer",
            "--ae-title",
            "PEER",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        )
        assert "success" in kaapana(data, "nodes", "echo", "peer")
        kaapana(data, "import", str(import_dir / "ct.dcm"), str(import_dir / "more.zip"))
        ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        output = kaapana(data, "send", "peer", "--study", ct.StudyInstanceUID)
        assert "sent 1, failed 0" in output
        output = kaapana(data, "send", "peer", get_testdata_file("JPEG2000.dcm"))
        assert "sent 1, failed 0" in output
        wait_until(lambda: len(list(received.iterdir())) == 2, 10, "two received files")
        by_uid = {pydicom.dcmread(p).SOPInstanceUID: p for p in received.iterdir()}
        assert pydicom.dcmread(by_uid[ct.SOPInstanceUID]).PixelData == ct.PixelData
        j2k = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))
        sent = pydicom.dcmread(by_uid[j2k.SOPInstanceUID])
        assert sent.file_meta.TransferSyntaxUID == j2k.file_meta.TransferSyntaxUID
        assert kaapana(data, "send", "peer", "--series", "1.2.3.4", code=1)
    finally:
        peer.terminate()
        peer.wait(10)
    assert "unreachable" in kaapana(data, "nodes", "echo", "peer", code=1)


def test_demo_loads_a_synthetic_cohort(tmp_path: Path) -> None:
    output = kaapana(tmp_path / "data", "demo", "--patients", "1")
    assert "demo data in dataset 'demo'" in output
    found = json.loads(kaapana(tmp_path / "data", "search", "--json", "-f", "Modality=SEG"))
    assert found["items"]
    with Platform(Settings(data_dir=tmp_path / "data")) as platform:
        keys = list(platform.store.keys("dicom"))
    assert len(keys) > 10


def test_users_projects_tokens_and_audit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = runner.invoke(app, ["--data-dir", str(data), "projects", "add", "lung"])
    assert first.exit_code == 0, first.output
    password = re.search(r"created user 'admin' with password: (\S+)", first.stderr)
    assert password is not None
    assert "password" not in kaapana(data, "projects", "list")  # shown once only
    kaapana(data, "users", "add", "alice", "--password", "alice-password")
    assert "at least 8" in kaapana(data, "users", "add", "bob", "--password", "short", code=1)
    kaapana(data, "projects", "grant", "lung", "alice", "scientist")
    kaapana(data, "projects", "grant", "lung", "alice", "overlord", code=2)
    members = json.loads(kaapana(data, "projects", "members", "lung", "--json"))
    assert members == [{"username": "alice", "role": "scientist"}]
    created = runner.invoke(
        app,
        ["--data-dir", str(data), "tokens", "create", "alice", "--name", "nb", "--project", "lung"],
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    with Platform(Settings(data_dir=data)) as platform:
        user, token = platform.auth.tokens.verify(secret)
        assert (user.username, token.projects, token.can_write) == ("alice", ["lung"], False)
        assert platform.auth.login("admin", password.group(1), address="cli-test")[0].is_admin
    listed = kaapana(data, "tokens", "list", "--json")
    assert secret not in listed
    assert json.loads(listed)[0]["state"] == "active"
    kaapana(data, "tokens", "revoke", str(token.id))
    assert json.loads(kaapana(data, "tokens", "list", "alice", "--json"))[0]["state"] == "revoked"
    kaapana(data, "projects", "access", "lung", "--calling-ae", "CT1", "--network", "10.0.0.0/8")
    assert "allowed_networks" in kaapana(
        data, "projects", "access", "lung", "--network", "not-a-net", code=1
    )
    kaapana(data, "users", "set", "alice", "--inactive")
    events = json.loads(kaapana(data, "audit", "--actor", "cli:" + getpass.getuser(), "--json"))
    actions = [event["action"] for event in events]
    assert {"user.create", "membership.set", "token.create", "token.revoke", "user.update"} <= set(
        actions
    )
    kaapana(data, "users", "remove", "alice")
    assert [u["username"] for u in json.loads(kaapana(data, "users", "list", "--json"))] == [
        "admin"
    ]
