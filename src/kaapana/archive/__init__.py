"""The archive: storing, indexing, querying and retrieving DICOM objects."""

from kaapana.archive.archive import Archive, StoreResult, StoreStatusValues, StoreTarget
from kaapana.archive.events import EventBus, SeriesArrived, SeriesQuietMonitor
from kaapana.archive.metadata import InstanceRecord

__all__ = [
    "Archive",
    "EventBus",
    "InstanceRecord",
    "SeriesArrived",
    "SeriesQuietMonitor",
    "StoreResult",
    "StoreStatusValues",
    "StoreTarget",
]
