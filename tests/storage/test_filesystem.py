"""The filesystem object store: atomic durable writes, and no key escapes the store."""

from pathlib import Path

import pytest

from kaapana.errors import InvalidInput, NotFound
from kaapana.storage import FilesystemStore
from kaapana.storage.filesystem import TEMP_SUFFIX


def test_put_get_replace_delete(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "store")
    store.put("dicom/1.2/1.2.3/1.2.3.4.dcm", b"first")
    store.put("dicom/1.2/1.2.3/1.2.3.4.dcm", b"second")
    assert store.get("dicom/1.2/1.2.3/1.2.3.4.dcm") == b"second"
    assert store.size("dicom/1.2/1.2.3/1.2.3.4.dcm") == 6
    assert list(store.keys()) == ["dicom/1.2/1.2.3/1.2.3.4.dcm"]
    store.delete("dicom/1.2/1.2.3/1.2.3.4.dcm")
    store.delete("dicom/1.2/1.2.3/1.2.3.4.dcm")  # missing is fine
    with pytest.raises(NotFound):
        store.get("dicom/1.2/1.2.3/1.2.3.4.dcm")


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "a/\x00b", "a/" + "x" * 200, "", "a/."],
)
def test_hostile_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = FilesystemStore(tmp_path / "store")
    with pytest.raises(InvalidInput):
        store.put(key, b"x")
    assert list((tmp_path).rglob("*")) == [tmp_path / "store"]


def test_leftover_temp_files_are_invisible_and_removable(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "store")
    store.put("a/b.dcm", b"ok")
    (tmp_path / "store" / "a" / f".b.dcm.123{TEMP_SUFFIX}").write_bytes(b"half")
    assert list(store.keys()) == ["a/b.dcm"]
    assert store.remove_leftovers() == 1
    assert store.get("a/b.dcm") == b"ok"
