"""Storing synthetic series and letting them arrive, as the series monitor announces them."""

import time
from collections.abc import Iterable

from pydicom import Dataset

from kaapana.archive import SeriesQuietMonitor
from kaapana.platform import Platform
from tests.helpers import part10


def store(platform: Platform, datasets: Iterable[Dataset], project: str = "admin") -> None:
    target = platform.archive.target(project)
    for ds in datasets:
        platform.archive.store_bytes(part10(ds), target)


def arrive(platform: Platform) -> None:
    """Announce every stored series (as the monitor does once they are quiet) and wait until
    the background jobs have processed them."""
    monitor = SeriesQuietMonitor(platform.engine, platform.events, quiet_seconds=0.001)
    time.sleep(0.01)
    monitor.poll()
    assert platform.series_jobs is not None
    assert platform.series_jobs.join(120)
