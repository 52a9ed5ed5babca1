"""A zip archive of series, written while it streams: the bytes of each instance as stored.

Members are named like the storage layout, ``<StudyInstanceUID>/<SeriesInstanceUID>/
<SOPInstanceUID>.dcm``. The archive is written into a small buffer that is handed on and
emptied after every chunk of every file, so a download of any size holds one chunk in memory;
without a seekable target, ``zipfile`` puts each member's CRC and sizes in a data descriptor.
Instances are read from the index in pages along a server-side cursor, as manifests are.
"""

import zipfile
from collections.abc import Iterator, Sequence

from sqlalchemy import Engine, Select, select

from kaapana.archive.visibility import ProjectScope, visible_series_pks
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, Study
from kaapana.storage.base import ObjectStore

CHUNK = 1 << 20
PAGE_SIZE = 500
ZIP_MEDIA_TYPE = "application/zip"


class _Sink:
    """The write end ``zipfile`` sees: it keeps what was written until ``take`` collects it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def selected_series_ids(
    engine: Engine, series_instance_uids: Sequence[str], projects: ProjectScope
) -> Select[tuple[int]]:
    """The pks of the named series as a select; one UID the scope does not see fails all."""
    with session_factory(engine)() as session:
        pks = visible_series_pks(session, series_instance_uids, projects)
    return select(Series.id).where(Series.id.in_(pks))


def _instances(engine: Engine, series_ids: Select[tuple[int]]) -> Iterator[tuple[str, str]]:
    """(member name, storage key) of every instance of the series, series by series."""
    members = series_ids.subquery()
    with session_factory(engine)() as session:
        rows = session.execute(
            select(
                Study.study_instance_uid,
                Series.series_instance_uid,
                Instance.sop_instance_uid,
                Instance.storage_key,
            )
            .join(Series, Instance.series_pk == Series.id)
            .join(Study, Series.study_pk == Study.id)
            .where(Series.id.in_(select(members.c[0])))
            .order_by(Series.id, Instance.instance_number.nulls_last(), Instance.sop_instance_uid)
            .execution_options(yield_per=PAGE_SIZE)
        )
        for study_uid, series_uid, sop_uid, key in rows:
            yield f"{study_uid}/{series_uid}/{sop_uid}.dcm", key


def series_zip(
    engine: Engine, store: ObjectStore, series_ids: Select[tuple[int]]
) -> Iterator[bytes]:
    """The zip archive of the series' instances, chunk by chunk (stored, not compressed:
    DICOM pixel data is often compressed already, and a download should not cost a core)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[arg-type]
        for name, key in _instances(engine, series_ids):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            with store.open(key) as source, archive.open(info, "w", force_zip64=True) as member:
                while chunk := source.read(CHUNK):
                    member.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


__all__ = ["ZIP_MEDIA_TYPE", "selected_series_ids", "series_zip"]
