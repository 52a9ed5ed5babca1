"""Ingest: bytes kept as received, index rows, duplicates, bad input, group commit, events."""

import threading
import time
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from kaapana.archive import (
    SeriesArrived,
    SeriesQuietMonitor,
    StoreResult,
    StoreStatusValues,
    journal,
)
from kaapana.archive.metadata import inspect, storage_key_for
from kaapana.config import DuplicatePolicyValues
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, SeriesProject, Study
from kaapana.errors import Conflict, InvalidDicom
from kaapana.platform import Platform
from tests.helpers import part10

COMPRESSED = [
    "JPEG2000.dcm",  # JPEG 2000
    "MR_small_RLE.dcm",  # RLE Lossless
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
    "JPEG-LL.dcm",  # JPEG lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS
    "image_dfl.dcm",  # deflated explicit VR little endian
]


def _count(platform: Platform, model: type) -> int:
    with session_factory(platform.engine)() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _key(result: StoreResult) -> str:
    return storage_key_for(
        result.study_instance_uid, result.series_instance_uid, result.sop_instance_uid
    )


def _ct(**changes: object) -> pydicom.Dataset:
    """CT_small with some attributes changed; invalid values on purpose, so pydicom may warn."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize("name", ["CT_small.dcm", *COMPRESSED])
def test_stored_bytes_are_the_received_bytes(platform: Platform, name: str) -> None:
    data = Path(get_testdata_file(name)).read_bytes()
    result = platform.archive.store_bytes(data, platform.archive.target())
    assert result.status is StoreStatusValues.stored
    with session_factory(platform.engine)() as session:
        row = session.scalars(
            select(Instance).where(Instance.sop_instance_uid == result.sop_instance_uid)
        ).one()
    assert platform.store.get(row.storage_key) == data
    assert row.transfer_syntax_uid == str(
        pydicom.dcmread(get_testdata_file(name)).file_meta.TransferSyntaxUID
    )
    assert row.storage_key == (
        f"dicom/{result.study_instance_uid}/{result.series_instance_uid}/{result.sop_instance_uid}.dcm"
    )


def test_metadata_json_is_precomputed_with_bulk_data_uris(platform: Platform) -> None:
    result = platform.archive.store_bytes(
        Path(get_testdata_file("CT_small.dcm")).read_bytes(), platform.archive.target()
    )
    with session_factory(platform.engine)() as session:
        instance = session.scalars(select(Instance)).one()
        series = session.scalars(select(Series)).one()
    assert instance.metadata_json["00080018"]["Value"] == [result.sop_instance_uid]
    pixel_data = instance.metadata_json["7FE00010"]
    assert pixel_data["BulkDataURI"].endswith(
        f"instances/{result.sop_instance_uid}/bulkdata/7FE00010"
    )
    assert "InlineBinary" not in pixel_data
    assert series.metadata_json["00080060"]["Value"] == ["CT"]
    assert "00080018" not in series.metadata_json  # instance-level attributes stay out
    assert series.number_of_instances == 1
    assert series.modality == "CT"


def test_identical_duplicate_is_a_no_op(platform: Platform) -> None:
    data = part10(_ct())
    target = platform.archive.target()
    assert platform.archive.store_bytes(data, target).status is StoreStatusValues.stored
    assert platform.archive.store_bytes(data, target).status is StoreStatusValues.duplicate
    assert _count(platform, Instance) == 1


def test_different_bytes_replace_the_stored_object(platform: Platform) -> None:
    target = platform.archive.target()
    platform.archive.store_bytes(part10(_ct(SeriesDescription="first")), target)
    second = part10(_ct(SeriesDescription="second"))
    result = platform.archive.store_bytes(second, target)
    assert result.status is StoreStatusValues.replaced
    key = _key(result)
    assert platform.store.get(key) == second
    assert _count(platform, Instance) == 1


def test_replacement_moved_to_another_series_removes_the_old_file(platform: Platform) -> None:
    target = platform.archive.target()
    first = platform.archive.store_bytes(part10(_ct()), target)
    moved = platform.archive.store_bytes(part10(_ct(SeriesInstanceUID=generate_uid())), target)
    assert moved.status is StoreStatusValues.replaced
    assert list(platform.store.keys("dicom")) == [
        f"dicom/{moved.study_instance_uid}/{moved.series_instance_uid}/{moved.sop_instance_uid}.dcm"
    ]
    with session_factory(platform.engine)() as session:
        rows = session.execute(select(Series.series_instance_uid, Series.number_of_instances))
        counts = {uid: count for uid, count in rows}
    assert counts == {first.series_instance_uid: 0, moved.series_instance_uid: 1}


def test_reject_policy_keeps_the_first_object(make_settings, database_url) -> None:
    settings = make_settings(
        database_url=database_url, duplicate_policy=DuplicatePolicyValues.reject
    )
    with Platform(settings) as platform:
        target = platform.archive.target()
        first = part10(_ct(SeriesDescription="first"))
        result = platform.archive.store_bytes(first, target)
        with pytest.raises(Conflict, match="stored already"):
            platform.archive.store_bytes(part10(_ct(SeriesDescription="second")), target)
        key = _key(result)
        assert platform.store.get(key) == first


def _truncated() -> bytes:
    return Path(get_testdata_file("CT_small.dcm")).read_bytes()[:-1000]


def _patched(element_header: bytes, patch: bytes, offset: int) -> bytes:
    """CT_small with bytes overwritten ``offset`` bytes after an element's tag and VR."""
    data = bytearray(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    start = data.index(element_header) + offset
    data[start : start + len(patch)] = patch
    return bytes(data)


def _absurd_length() -> bytes:
    return _patched(b"\x10\x00\x10\x00PN", b"\xff\x7f", 4)  # PatientName claims 32 KiB


def _wrong_vr_value() -> bytes:
    return _patched(b"\x20\x00\x13\x00IS", b"x", 8)  # InstanceNumber "x"


BAD_INPUTS = {
    "truncated": _truncated,
    "not dicom": lambda: b"%PDF-1.4 not an image" * 20,
    "empty": lambda: b"",
    "missing study uid": lambda: part10(_ct(StudyInstanceUID="")),
    "missing sop uid": lambda: part10(_ct(SOPInstanceUID="")),
    "invalid uid": lambda: part10(_ct(SeriesInstanceUID="1.2.abc")),
    "traversal uid": lambda: part10(_ct(StudyInstanceUID="../../etc")),
    "long uid": lambda: part10(_ct(SOPInstanceUID="1." + "2" * 80)),
    "wrong vr code": lambda: _patched(b"\x10\x00\x10\x00PN", b"Z!", 4),
    "absurd length": _absurd_length,
}


@pytest.mark.parametrize("make_bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_rejected_and_changes_nothing(platform: Platform, make_bad) -> None:
    data = make_bad()
    with pytest.raises(InvalidDicom):
        platform.archive.store_bytes(data, platform.archive.target())
    assert _count(platform, Instance) == 0
    assert _count(platform, Study) == 0
    assert list(platform.store.keys()) == []


def test_value_that_does_not_convert_is_kept_out_of_the_metadata_only(platform: Platform) -> None:
    """Tolerant reading: the object is worth keeping; only the broken element is left out."""
    data = _wrong_vr_value()
    result = platform.archive.store_bytes(data, platform.archive.target())
    assert result.status is StoreStatusValues.stored
    with session_factory(platform.engine)() as session:
        instance = session.scalars(select(Instance)).one()
    assert instance.instance_number is None
    assert "00200013" not in instance.metadata_json
    assert instance.metadata_json["00100010"]  # everything else is there
    assert platform.store.get(_key(result)) == data


def test_concurrent_stores_share_group_commits(platform: Platform) -> None:
    target = platform.archive.target()
    study = generate_uid()
    series = [generate_uid() for _ in range(4)]
    payloads = [
        part10(
            _ct(
                StudyInstanceUID=study,
                SeriesInstanceUID=series[i % 4],
                SOPInstanceUID=generate_uid(),
            )
        )
        for i in range(200)
    ]
    errors: list[BaseException] = []

    def worker(chunk: list[bytes]) -> None:
        try:
            for data in chunk:
                platform.archive.store_bytes(data, target)
        except BaseException as exc:  # reported below, threads cannot raise into the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(payloads[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(platform, Instance) == 200
    assert _count(platform, Series) == 4
    assert _count(platform, SeriesProject) == 4
    with session_factory(platform.engine)() as session:
        assert set(session.scalars(select(Series.number_of_instances))) == {50}


def test_series_arrived_fires_once_after_quiet_period(platform: Platform) -> None:
    seen: list[SeriesArrived] = []
    platform.events.subscribe(SeriesArrived, seen.append)
    monitor = SeriesQuietMonitor(platform.engine, platform.events, quiet_seconds=0.3)
    result = platform.archive.store_bytes(part10(_ct()), platform.archive.target())
    assert monitor.poll() == []  # not quiet yet
    time.sleep(0.4)
    announced = monitor.poll()
    assert [event.series_instance_uid for event in announced] == [result.series_instance_uid]
    assert seen == announced
    assert monitor.poll() == []  # once only
    platform.archive.store_bytes(
        part10(_ct(SOPInstanceUID=generate_uid())), platform.archive.target()
    )
    time.sleep(0.4)
    assert [e.number_of_instances for e in monitor.poll()] == [2]  # new arrivals: announced again


def test_failing_event_handler_does_not_stop_others(platform: Platform) -> None:
    seen: list[object] = []

    def broken(_event: object) -> None:
        raise RuntimeError("handler bug")

    platform.events.subscribe(SeriesArrived, broken)
    platform.events.subscribe(SeriesArrived, seen.append)
    event = SeriesArrived("1.2", "1.2.3", "CT", 1)
    platform.events.publish(event)
    assert seen == [event]


def test_start_indexes_what_a_dead_process_acknowledged(make_settings, database_url) -> None:
    """A journal left by a killed receiver names objects it acknowledged; start-up indexes them."""
    settings = make_settings(database_url=database_url)
    data = part10(_ct())
    with Platform(settings) as platform:
        admin = platform.archive.target()
        received = inspect(data)
        platform.store.put(received.storage_key, data)
        journal_dir = platform.archive.journal_dir
        journal_dir.mkdir(parents=True, exist_ok=True)
        dead = journal_dir / "999999-deadbeef.journal"
        dead.write_text(
            f"{received.storage_key}\t{admin.project_pk}\t\n" + "dicom/torn-line-without-tabs"
        )
    with Platform(settings) as platform:
        assert _count(platform, Instance) == 1
        assert not dead.exists()
        assert platform.archive.recover() == 0  # nothing left to do


def test_receiver_process_journals_and_the_owner_indexes(make_settings, database_url) -> None:
    """A receiver (no index of its own) acknowledges from its journal; the owner indexes it and
    deletes the journal once the receiver has ended it."""
    settings = make_settings(database_url=database_url)
    with Platform(settings) as owner:
        owner.archive.index_journals()
        with Platform(settings, migrate=False) as receiver:
            results = [
                receiver.archive.store_bytes(
                    part10(_ct(SOPInstanceUID=generate_uid())),
                    receiver.archive.target(),
                    wait=False,
                )
                for _ in range(20)
            ]
            assert {result.status for result in results} == {StoreStatusValues.acknowledged}
            owner.archive.flush()
            assert _count(owner, Instance) == 20
        owner.archive.flush()
        assert list(owner.archive.journal_dir.iterdir()) == []


def test_journals_rotate_and_ended_ones_are_deleted(
    make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-running receiver starts a new journal every ROTATE_AFTER entries; the indexer
    deletes each ended one once it is committed, and keeps the one still being written."""
    monkeypatch.setattr(journal, "ROTATE_AFTER", 5)
    settings = make_settings()
    with Platform(settings) as owner:
        owner.archive.index_journals()
        with Platform(settings, migrate=False) as receiver:
            for _ in range(12):
                receiver.archive.store_bytes(
                    part10(_ct(SOPInstanceUID=generate_uid())),
                    receiver.archive.target(),
                    wait=False,
                )
            owner.archive.flush()
            assert _count(owner, Instance) == 12
            remaining = list(owner.archive.journal_dir.iterdir())
            assert [path.name.rsplit("-", 1)[1] for path in remaining] == ["000003.journal"]
        owner.archive.flush()
        assert list(owner.archive.journal_dir.iterdir()) == []
