"""C-ECHO and C-STORE against DCMTK's echoscu/storescu, every transfer syntax family."""

import socket
import subprocess
import time
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import select

from kaapana.db.engine import session_factory
from kaapana.db.models import Dataset, DatasetSeries, Instance, Series, SeriesProject
from kaapana.dimse.scp import start_scp
from kaapana.platform import Platform
from tests.dimse.conftest import RunningSCP
from tests.helpers import DCMTK_ENV, dcmtk, part10, wait_until

pytestmark = pytest.mark.interop
TRAILING_PADDING = 0xFFFCFFFC  # DCMTK drops it when sending
PIXEL_DATA = 0x7FE00010

# (file, storescu option proposing its transfer syntax)
TRANSFER_SYNTAX_FILES = [
    ("CT_small.dcm", "-xe"),  # explicit VR little endian
    ("rtplan.dcm", "-xi"),  # implicit VR little endian
    ("image_dfl.dcm", "-xd"),  # deflated explicit VR little endian
    ("SC_rgb_dcmtk_+eb+cy+n1.dcm", "-xy"),  # JPEG baseline
    ("JPEG-lossy.dcm", "-xx"),  # JPEG extended
    ("SC_rgb_jpeg_gdcm.dcm", "-xs"),  # JPEG lossless SV1
    ("MR_small_jpeg_ls_lossless.dcm", "-xt"),  # JPEG-LS lossless
    ("JPEGLSNearLossless_08.dcm", "-xu"),  # JPEG-LS near-lossless (UIDs added below)
    ("examples_jpeg2k.dcm", "-xv"),  # JPEG 2000 lossless
    ("JPEG2000.dcm", "-xw"),  # JPEG 2000
    ("MR_small_RLE.dcm", "-xr"),  # RLE lossless
    ("US1_J2KR.dcm", "-xv"),  # from pydicom-data: JPEG 2000 lossless, ultrasound
    ("emri_small_jpeg_ls_lossless.dcm", "-xt"),  # from pydicom-data: multi-frame JPEG-LS
]


def run(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [dcmtk(tool), *args],
        capture_output=True,
        text=True,
        env=DCMTK_ENV,
        timeout=120,
        check=check,
    )


def stored(scp: RunningSCP, sop_instance_uid: str) -> pydicom.Dataset:
    scp.platform.archive.flush()  # C-STORE is answered before the group commit
    with session_factory(scp.platform.engine)() as session:
        key = session.scalar(
            select(Instance.storage_key).where(Instance.sop_instance_uid == sop_instance_uid)
        )
    assert key is not None, f"{sop_instance_uid} is not indexed"
    return pydicom.dcmread(scp.platform.store.local_path(key))


def test_echoscu(scp: RunningSCP) -> None:
    result = run("echoscu", "-aec", "KAAPANA", "127.0.0.1", str(scp.port))
    assert result.returncode == 0


def with_uids(name: str, folder: Path) -> Path:
    """The test file, given the UIDs the index needs if it lacks them; pixel data untouched."""
    path = Path(get_testdata_file(name))
    ds = pydicom.dcmread(path)
    missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID") if k not in ds]
    if not missing:
        return path
    for keyword in missing:
        setattr(ds, keyword, generate_uid())
    copy = folder / name
    ds.save_as(copy, enforce_file_format=True)
    return copy


@pytest.mark.parametrize(("name", "option"), TRANSFER_SYNTAX_FILES)
def test_storescu_keeps_the_transfer_syntax(
    scp: RunningSCP, tmp_path: Path, name: str, option: str
) -> None:
    path = with_uids(name, tmp_path)
    original = pydicom.dcmread(path)
    run("storescu", option, "-aec", "KAAPANA", "127.0.0.1", str(scp.port), str(path))
    received = stored(scp, original.SOPInstanceUID)
    assert received.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    differing = [
        element.keyword or str(element.tag)
        for element in original
        if element.tag not in (TRAILING_PADDING, PIXEL_DATA)
        and received.get(element.tag) != element
    ]
    assert differing == []
    if received.get(PIXEL_DATA) != original.get(PIXEL_DATA):
        # DCMTK re-fragments some encapsulated pixel data on sending; the frames must still agree.
        assert received.pixel_array.tobytes() == original.pixel_array.tobytes()


def test_many_files_in_one_association(scp: RunningSCP, tmp_path: Path) -> None:
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series_uid = generate_uid()
    for number in range(1, 51):
        base.SOPInstanceUID = generate_uid()
        base.SeriesInstanceUID = series_uid
        base.InstanceNumber = number
        (tmp_path / f"{number}.dcm").write_bytes(part10(base))
    run("storescu", "-aec", "KAAPANA", "+sd", "127.0.0.1", str(scp.port), str(tmp_path))
    scp.platform.archive.flush()
    with session_factory(scp.platform.engine)() as session:
        series = session.scalars(select(Series)).one()
    assert series.series_instance_uid == series_uid
    assert series.number_of_instances == 50


def test_unknown_called_ae_title_is_rejected(scp: RunningSCP) -> None:
    result = run("echoscu", "-aec", "NOBODY", "127.0.0.1", str(scp.port), check=False)
    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stdout + result.stderr


def test_unknown_called_ae_title_accepted_into_admin_when_configured(make_scp) -> None:
    scp = make_scp(unknown_called_ae="accept")
    run("storescu", "-aec", "NOBODY", "127.0.0.1", str(scp.port), get_testdata_file("CT_small.dcm"))
    assert stored(scp, pydicom.dcmread(get_testdata_file("CT_small.dcm")).SOPInstanceUID)


def test_called_ae_selects_project_and_calling_kp_ae_selects_dataset(scp: RunningSCP) -> None:
    project = scp.platform.archive.projects.create("lung-study", ae_title="LUNG")
    path = get_testdata_file("CT_small.dcm")
    run("storescu", "-aet", "kp-cohort1", "-aec", "LUNG", "127.0.0.1", str(scp.port), path)
    scp.platform.archive.flush()
    with session_factory(scp.platform.engine)() as session:
        series_pk = session.scalar(select(Series.id))
        projects = set(
            session.scalars(
                select(SeriesProject.project_pk).where(SeriesProject.series_pk == series_pk)
            )
        )
        dataset = session.scalars(select(Dataset)).one()
        members = set(session.scalars(select(DatasetSeries.series_pk)))
    assert projects == {project.id}
    assert (dataset.name, dataset.project_pk) == ("cohort1", project.id)
    assert members == {series_pk}


def test_bad_object_gets_failure_status_and_server_keeps_serving(
    scp: RunningSCP, tmp_path: Path
) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.SeriesInstanceUID = "1.2.evil/../../x"
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(part10(ds))
    result = run(
        "storescu", "-d", "-aec", "KAAPANA", "127.0.0.1", str(scp.port), str(bad), check=False
    )
    output = result.stdout + result.stderr
    assert "DIMSE Status                  : 0xc000" in output
    assert "SeriesInstanceUID is not a valid UID" in output
    assert list(scp.platform.store.keys()) == []
    good = get_testdata_file("CT_small.dcm")
    run("storescu", "-aec", "KAAPANA", "127.0.0.1", str(scp.port), good)
    assert stored(scp, pydicom.dcmread(good).SOPInstanceUID)


def test_stop_does_not_wait_for_connections_without_association(make_settings) -> None:
    platform = Platform(make_settings())
    server = start_scp(platform, host="127.0.0.1", port=0)
    probe = socket.create_connection(("127.0.0.1", server.server_address[1]))
    try:
        wait_until(lambda: len(server.active_associations) == 1, 5, "the probe's connection")
        started = time.monotonic()
        server.shutdown()
        server.wait_idle(30)
        assert time.monotonic() - started < 5
    finally:
        probe.close()
        platform.close()
