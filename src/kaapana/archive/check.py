"""Consistency of index and storage, for after a crash or a manual change to the data dir.

Files without index rows are indexed again (into ``admin``: their original project is unknown),
rows without files are reported (their data is gone; deleting the rows is a decision for a human),
temp files of interrupted writes are removed. Run it while no server writes to the same data dir.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from kaapana.archive.archive import Archive
from kaapana.archive.metadata import storage_key_for
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance
from kaapana.errors import KaapanaError

DICOM_PREFIX = "dicom"


@dataclass
class CheckReport:
    indexed_instances: int = 0
    stored_files: int = 0
    reindexed: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    leftovers_removed: int = 0

    @property
    def consistent(self) -> bool:
        return not (self.reindexed or self.missing_files or self.unreadable)


def check(archive: Archive, *, on_progress: Callable[[str], None] | None = None) -> CheckReport:
    report = CheckReport(leftovers_removed=archive.store.remove_leftovers())
    with session_factory(archive.engine)() as session:
        indexed = dict(
            session.execute(select(Instance.storage_key, Instance.sop_instance_uid)).all()
        )
    report.indexed_instances = len(indexed)
    stored = set(archive.store.keys(DICOM_PREFIX))
    report.stored_files = len(stored)
    target = archive.target()
    for key in sorted(stored - indexed.keys()):
        if on_progress is not None:
            on_progress(key)
        try:
            result = archive.store_bytes(archive.store.get(key), target, source=key)
        except KaapanaError as exc:
            report.unreadable.append((key, exc.detail))
            continue
        report.reindexed.append(result.sop_instance_uid)
        proper_key = storage_key_for(
            result.study_instance_uid, result.series_instance_uid, result.sop_instance_uid
        )
        if proper_key != key:
            archive.store.delete(key)
    report.missing_files = sorted(indexed[key] for key in indexed.keys() - stored)
    return report


__all__ = ["CheckReport", "check"]
