"""C-FIND, C-MOVE and C-GET against DCMTK's findscu, movescu (to storescp) and getscu."""

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.dsutils import split_dataset
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

from kaapana.archive.metadata import storage_key_for
from kaapana.archive.nodes import Nodes
from tests.archive.test_query import instance, uid
from tests.dimse.conftest import RunningSCP
from tests.helpers import DCMTK_ENV, dcmtk, free_port, port_open, wait_until

pytestmark = pytest.mark.interop

RLE_FILE = "MR_small_RLE.dcm"
PRIVATE_SOP_CLASS = "1.2.826.0.1.3680043.10.543.7.1"  # no peer proposes this one


def run(tool: str, *args: str | Path | int) -> str:
    """Run a DCMTK tool; its output (stdout and stderr) for assertions, whatever its exit code."""
    result = subprocess.run(
        [dcmtk(tool), *map(str, args)],
        capture_output=True,
        text=True,
        env=DCMTK_ENV,
        timeout=60,
    )
    return result.stdout + result.stderr


def keys(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("-k", pair)]


def data_set_bytes(path: Path | str) -> bytes:
    """The data set of a Part 10 file, without preamble and file meta."""
    _meta, offset = split_dataset(Path(path))
    return Path(path).read_bytes()[offset:]


def load(scp: RunningSCP) -> dict[str, str]:
    """Two patients and three series, plus an RLE-compressed MR; returns sop uid -> storage key."""
    archive = scp.platform.archive
    target = archive.target()
    keys_by_uid = {}

    def put(data: bytes) -> None:
        result = archive.store_bytes(data, target)
        keys_by_uid[result.sop_instance_uid] = storage_key_for(
            result.study_instance_uid, result.series_instance_uid, result.sop_instance_uid
        )

    for series, modality, count in (("A-CT", "CT", 3), ("A-MR", "MR", 2)):
        for number in range(1, count + 1):
            put(
                instance(
                    PatientID="P1",
                    PatientName="Doe^John",
                    StudyInstanceUID=uid("A"),
                    StudyDate="20200115",
                    SeriesInstanceUID=uid(series),
                    Modality=modality,
                    SOPClassUID=MRImageStorage if modality == "MR" else CTImageStorage,
                    SOPInstanceUID=uid(f"{series}/{number}"),
                    InstanceNumber=number,
                )
            )
    put(
        instance(
            PatientID="P2",
            PatientName="Müller^Anna",
            SpecificCharacterSet="ISO_IR 192",
            StudyInstanceUID=uid("B"),
            StudyDate="20210310",
            SeriesInstanceUID=uid("B-CT"),
            SOPInstanceUID=uid("B-CT/1"),
            InstanceNumber=1,
        )
    )
    put(Path(get_testdata_file(RLE_FILE)).read_bytes())
    return keys_by_uid


@pytest.fixture
def loaded(scp: RunningSCP) -> RunningSCP:
    load(scp)
    return scp


def findscu(
    scp: RunningSCP, out: Path, model: str, *pairs: str, aec: str = "KAAPANA"
) -> list[Dataset]:
    out.mkdir()
    run("findscu", model, "-aec", aec, "-X", "-od", out, *keys(*pairs), "127.0.0.1", scp.port)
    return [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


@pytest.mark.parametrize(
    ("model", "pairs", "unique_key", "expected"),
    [
        (
            "-P",
            ["QueryRetrieveLevel=PATIENT", "PatientName=doe*", "PatientID"],
            "PatientID",
            ["P1"],
        ),
        (
            "-P",
            ["QueryRetrieveLevel=STUDY", "PatientID=P1", "StudyInstanceUID", "StudyDate"],
            "StudyInstanceUID",
            ["A"],
        ),
        (
            "-S",
            ["QueryRetrieveLevel=STUDY", "StudyDate=20200101-", "StudyInstanceUID"],
            "StudyInstanceUID",
            ["A", "B"],
        ),
        (
            "-S",
            ["QueryRetrieveLevel=STUDY", "StudyDate=20200101-20201231", "StudyInstanceUID"],
            "StudyInstanceUID",
            ["A"],
        ),
        (
            "-S",
            ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={uid('B')}\\{uid('A')}"],
            "StudyInstanceUID",
            ["A", "B"],
        ),
        (
            "-S",
            ["QueryRetrieveLevel=SERIES", "Modality=C?", "SeriesInstanceUID"],
            "SeriesInstanceUID",
            ["A-CT", "B-CT"],
        ),
        (
            "-S",
            ["QueryRetrieveLevel=SERIES", f"StudyInstanceUID={uid('A')}", "SeriesInstanceUID"],
            "SeriesInstanceUID",
            ["A-CT", "A-MR"],
        ),
        (
            "-P",
            [
                "QueryRetrieveLevel=IMAGE",
                "PatientID=P1",
                f"StudyInstanceUID={uid('A')}",
                f"SeriesInstanceUID={uid('A-CT')}",
                "SOPInstanceUID",
            ],
            "SOPInstanceUID",
            ["A-CT/1", "A-CT/2", "A-CT/3"],
        ),
    ],
)
def test_findscu_levels_models_and_matching(
    loaded: RunningSCP,
    tmp_path: Path,
    model: str,
    pairs: list[str],
    unique_key: str,
    expected: list[str],
) -> None:
    responses = findscu(loaded, tmp_path / "rsp", model, *pairs)
    found = [str(response[unique_key].value) for response in responses]
    assert found == [name if unique_key == "PatientID" else uid(name) for name in expected]


def test_findscu_gets_exactly_the_requested_keys(loaded: RunningSCP, tmp_path: Path) -> None:
    (study,) = findscu(
        loaded,
        tmp_path / "rsp",
        "-P",
        "QueryRetrieveLevel=STUDY",
        "PatientID=P1",
        "StudyDate",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "Manufacturer",
    )
    assert {element.keyword for element in study} == {
        "QueryRetrieveLevel",
        "PatientID",
        "StudyInstanceUID",
        "StudyDate",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "Manufacturer",
    }
    assert study.StudyDate == "20200115"
    assert list(study.ModalitiesInStudy) == ["CT", "MR"]
    assert int(study.NumberOfStudyRelatedSeries) == 2
    assert int(study.NumberOfStudyRelatedInstances) == 5


def test_findscu_non_ascii_names_come_back_in_utf8(loaded: RunningSCP, tmp_path: Path) -> None:
    (patient,) = findscu(
        loaded, tmp_path / "rsp", "-P", "QueryRetrieveLevel=PATIENT", "PatientID=P2", "PatientName"
    )
    assert patient.SpecificCharacterSet == "ISO_IR 192"
    assert patient.PatientName == "Müller^Anna"


def test_findscu_sees_the_project_of_the_called_ae_title(scp: RunningSCP, tmp_path: Path) -> None:
    archive = scp.platform.archive
    archive.projects.create("other", ae_title="OTHER")
    archive.store_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes(), archive.target())
    archive.store_bytes(Path(get_testdata_file(RLE_FILE)).read_bytes(), archive.target("other"))
    pairs = ["QueryRetrieveLevel=STUDY", "Modality", "ModalitiesInStudy"]
    other = findscu(scp, tmp_path / "other", "-S", *pairs, aec="OTHER")
    admin = findscu(scp, tmp_path / "admin", "-S", *pairs)
    assert [study.ModalitiesInStudy for study in other] == ["MR"]
    assert sorted(study.ModalitiesInStudy for study in admin) == ["CT", "MR"]


def test_findscu_invalid_level_fails_with_a_reason(loaded: RunningSCP) -> None:
    output = run(
        "findscu",
        "-d",
        "-S",
        "-aec",
        "KAAPANA",
        *keys("QueryRetrieveLevel=PATIENT"),
        "127.0.0.1",
        loaded.port,
    )
    assert "0xa900" in output
    assert "'QueryRetrieveLevel' must be STUDY/SERIES/IMAGE, got 'PATIENT'" in output


def test_findscu_cancel_stops_the_responses(scp: RunningSCP, tmp_path: Path) -> None:
    archive = scp.platform.archive
    count = 2000
    for number in range(1, count + 1):
        archive.store_bytes(
            instance(
                PatientID="P9",
                StudyInstanceUID=uid("E"),
                SeriesInstanceUID=uid("E-CT"),
                SOPInstanceUID=uid(f"E-CT/{number}"),
                InstanceNumber=number,
                PixelData=b"",
            ),
            archive.target(),
            wait=False,  # committed in groups: fast
        )
    archive.flush()
    out = tmp_path / "rsp"
    out.mkdir()
    # Keys answered from the instance JSON make each response cost about a millisecond, so the
    # cancel (sent after the first response) arrives long before the last one is built.
    json_keys = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel")
    pairs = ("QueryRetrieveLevel=IMAGE", f"SeriesInstanceUID={uid('E-CT')}", *json_keys)
    output = run(
        "findscu",
        "-d",
        "-S",
        "--cancel",
        "1",
        "-aec",
        "KAAPANA",
        "-X",
        "-od",
        out,
        *keys(*pairs),
        "127.0.0.1",
        scp.port,
    )
    assert "0xfe00" in output  # Cancel
    assert 1 <= len(list(out.glob("rsp*.dcm"))) < count


@pytest.fixture
def make_storescp(tmp_path: Path) -> Iterator[Callable[..., tuple[Path, int]]]:
    """DCMTK storescp receiving bit-preserving into a folder; returns (folder, port)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*options: str) -> tuple[Path, int]:
        folder = tmp_path / f"received-{len(started)}"
        folder.mkdir()
        port = free_port()
        process = subprocess.Popen(
            [dcmtk("storescp"), "+B", "-aet", "DEST", "-od", str(folder), *options, str(port)],
            env=DCMTK_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        wait_until(lambda: port_open(port), timeout=10, what="storescp")
        return folder, port

    yield start
    for process in started:
        process.kill()
        process.wait()


def movescu(scp: RunningSCP, *args: str) -> str:
    return run(
        "movescu", "-d", "-S", "-aec", "KAAPANA", "-aem", "DEST", *args, "127.0.0.1", scp.port
    )


def received(folder: Path) -> dict[str, Path]:
    """SOP Instance UID -> received file."""
    return {
        str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID): path
        for path in folder.iterdir()
    }


def test_movescu_sends_stored_objects_unchanged(
    scp: RunningSCP, make_storescp: Callable[..., tuple[Path, int]]
) -> None:
    stored = load(scp)
    folder, port = make_storescp("+xa")  # accepts every transfer syntax it knows
    Nodes(scp.platform.engine).add("dest", "DEST", "127.0.0.1", port)
    rle_study = pydicom.dcmread(get_testdata_file(RLE_FILE)).StudyInstanceUID
    output = movescu(
        scp, *keys("QueryRetrieveLevel=STUDY", f"StudyInstanceUID={uid('A')}\\{rle_study}")
    )
    assert "Completed Suboperations       : 6" in output
    files = received(folder)
    assert set(files) == set(stored) - {uid("B-CT/1")}
    for sop_instance_uid, path in files.items():
        original = scp.platform.store.local_path(stored[sop_instance_uid])
        assert data_set_bytes(path) == data_set_bytes(original), sop_instance_uid
        assert (
            pydicom.dcmread(path).file_meta.TransferSyntaxUID
            == pydicom.dcmread(original).file_meta.TransferSyntaxUID
        )


def test_movescu_decompresses_for_a_peer_without_the_stored_syntax(
    scp: RunningSCP, make_storescp: Callable[..., tuple[Path, int]]
) -> None:
    stored = load(scp)
    folder, port = make_storescp()  # uncompressed transfer syntaxes only
    Nodes(scp.platform.engine).add("dest", "DEST", "127.0.0.1", port)
    original = pydicom.dcmread(get_testdata_file(RLE_FILE))
    output = movescu(
        scp,
        *keys(
            "QueryRetrieveLevel=IMAGE", f"SOPInstanceUID={original.SOPInstanceUID}\\{uid('A-MR/1')}"
        ),
    )
    assert "Completed Suboperations       : 2" in output
    files = received(folder)
    converted = pydicom.dcmread(files[original.SOPInstanceUID])
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert original.file_meta.TransferSyntaxUID == RLELossless
    assert converted.pixel_array.tobytes() == original.pixel_array.tobytes()
    assert converted.SOPInstanceUID == original.SOPInstanceUID
    uncompressed = scp.platform.store.local_path(stored[uid("A-MR/1")])
    assert data_set_bytes(files[uid("A-MR/1")]) == data_set_bytes(uncompressed)


def test_movescu_to_an_unknown_destination(loaded: RunningSCP) -> None:
    output = run(
        "movescu",
        "-d",
        "-S",
        "-aec",
        "KAAPANA",
        "-aem",
        "NOBODY",
        *keys("QueryRetrieveLevel=STUDY", f"StudyInstanceUID={uid('A')}"),
        "127.0.0.1",
        loaded.port,
    )
    assert "0xa801" in output


def test_movescu_without_the_unique_key_fails_with_a_reason(
    loaded: RunningSCP, make_storescp: Callable[..., tuple[Path, int]]
) -> None:
    folder, port = make_storescp()
    Nodes(loaded.platform.engine).add("dest", "DEST", "127.0.0.1", port)
    output = movescu(loaded, *keys("QueryRetrieveLevel=SERIES", f"StudyInstanceUID={uid('A')}"))
    assert "0xa900" in output
    assert "a SERIES level retrieve needs 'SeriesInstanceUID'" in output
    assert list(folder.iterdir()) == []


def test_movescu_cancel_stops_the_sub_operations(
    scp: RunningSCP, make_storescp: Callable[..., tuple[Path, int]]
) -> None:
    archive = scp.platform.archive
    for number in range(1, 41):
        archive.store_bytes(
            instance(
                PatientID="P9",
                StudyInstanceUID=uid("C"),
                SeriesInstanceUID=uid("C-CT"),
                SOPInstanceUID=uid(f"C-CT/{number}"),
                InstanceNumber=number,
            ),
            archive.target(),
        )
    folder, port = make_storescp()
    Nodes(scp.platform.engine).add("dest", "DEST", "127.0.0.1", port)
    output = movescu(
        scp, "--cancel", "1", *keys("QueryRetrieveLevel=SERIES", f"SeriesInstanceUID={uid('C-CT')}")
    )
    assert "0xfe00" in output  # Cancel
    assert 1 <= len(list(folder.iterdir())) < 40


def getscu(scp: RunningSCP, folder: Path, *args: str) -> str:
    folder.mkdir()
    return run("getscu", "-d", "-S", "-aec", "KAAPANA", "-od", folder, *args, "127.0.0.1", scp.port)


def test_getscu_retrieves_a_series_as_stored(scp: RunningSCP, tmp_path: Path) -> None:
    stored = load(scp)
    folder = tmp_path / "get"
    output = getscu(
        scp, folder, "+B", *keys("QueryRetrieveLevel=SERIES", f"SeriesInstanceUID={uid('A-CT')}")
    )
    assert "Number of Completed Suboperations : 3" in output
    files = received(folder)
    assert set(files) == {uid(f"A-CT/{number}") for number in (1, 2, 3)}
    for sop_instance_uid, path in files.items():
        original = scp.platform.store.local_path(stored[sop_instance_uid])
        assert data_set_bytes(path) == data_set_bytes(original), sop_instance_uid


def test_getscu_gets_compressed_objects_decompressed(loaded: RunningSCP, tmp_path: Path) -> None:
    """getscu proposes uncompressed syntaxes only: the RLE object is decompressed first."""
    rle = pydicom.dcmread(get_testdata_file(RLE_FILE))
    folder = tmp_path / "get"
    output = getscu(
        loaded,
        folder,
        "+B",
        *keys("QueryRetrieveLevel=IMAGE", f"SOPInstanceUID={uid('A-MR/2')}\\{rle.SOPInstanceUID}"),
    )
    assert "Number of Completed Suboperations : 2" in output
    files = received(folder)
    converted = pydicom.dcmread(files[rle.SOPInstanceUID])
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert converted.pixel_array.tobytes() == rle.pixel_array.tobytes()
    assert pydicom.dcmread(files[uid("A-MR/2")]).InstanceNumber == 2


def test_c_get_reports_objects_without_a_context(scp: RunningSCP, tmp_path: Path) -> None:
    archive = scp.platform.archive
    for number, sop_class in ((1, PRIVATE_SOP_CLASS), (2, CTImageStorage)):
        archive.store_bytes(
            instance(
                PatientID="P9",
                StudyInstanceUID=uid("D"),
                SeriesInstanceUID=uid("D-X"),
                SOPClassUID=sop_class,
                SOPInstanceUID=uid(f"D-X/{number}"),
                InstanceNumber=number,
            ),
            archive.target(),
        )
    query = ("QueryRetrieveLevel=SERIES", f"SeriesInstanceUID={uid('D-X')}")
    output = getscu(scp, tmp_path / "get", *keys(*query))
    assert "Number of Completed Suboperations : 1" in output
    assert "Number of Failed Suboperations    : 1" in output
    assert "0xb000" in output  # Warning: one or more sub-operations failed
    assert list(received(tmp_path / "get")) == [uid("D-X/2")]
    # getscu does not read the final response's data set; pynetdicom shows the failed list.
    ae = AE(ae_title="GETTER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.SeriesInstanceUID = uid("D-X")
    assoc = ae.associate(
        "127.0.0.1",
        scp.port,
        ae_title="KAAPANA",
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)],
    )
    assert assoc.is_established
    try:
        responses = list(assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet))
    finally:
        assoc.release()
    status, final = responses[-1]
    assert status.Status == 0xB000
    assert (status.NumberOfCompletedSuboperations, status.NumberOfFailedSuboperations) == (1, 1)
    assert final.FailedSOPInstanceUIDList == uid("D-X/1")
