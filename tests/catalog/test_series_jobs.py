"""The background work on SeriesArrived: off the monitor's thread, failures logged, drained."""

from collections.abc import Callable

import pytest
from sqlalchemy import select

from kaapana.archive import SeriesArrived, SeriesQuietMonitor
from kaapana.catalog import SeriesJobs, thumbnail_key
from kaapana.config import Settings
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, SeriesValidation
from kaapana.platform import Platform
from kaapana.storage import FilesystemStore
from kaapana.testing import ct_series
from tests.catalog.helpers import arrive, store


def test_a_failing_series_is_logged_and_the_next_one_still_processed(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    broken = ct_series(rows=16, columns=16, slices=3, seed=31, series_number=1)
    store(platform, broken)
    with session_factory(platform.engine)() as session:
        keys = session.scalars(select(Instance.storage_key)).all()
    for key in keys:
        platform.store.delete(key)  # the files are gone, the index rows remain
    seen: list[SeriesArrived] = []
    platform.events.subscribe(SeriesArrived, seen.append)
    arrive(platform)
    assert [e.series_instance_uid for e in seen] == [broken[0].SeriesInstanceUID]
    assert f"processing arrived series {broken[0].SeriesInstanceUID} failed" in caplog.text

    good = ct_series(rows=16, columns=16, slices=3, seed=32, series_number=2)
    store(platform, good)
    arrive(platform)
    assert platform.results.exists(thumbnail_key(good[0].SeriesInstanceUID))
    with session_factory(platform.engine)() as session:
        validated = session.scalars(
            select(Series.series_instance_uid).join(
                SeriesValidation, SeriesValidation.series_pk == Series.id
            )
        ).all()
    assert validated == [good[0].SeriesInstanceUID]


def test_close_finishes_what_was_queued(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    ct = ct_series(rows=16, columns=16, slices=5, seed=33)
    with Platform(settings) as platform:
        store(platform, ct)
        monitor = SeriesQuietMonitor(platform.engine, platform.events, quiet_seconds=0.001)
        assert platform.series_jobs is not None
        while not monitor.poll():
            pass
    results = FilesystemStore(settings.resolved_results_dir)
    assert results.exists(thumbnail_key(ct[0].SeriesInstanceUID))
    assert settings.resolved_results_dir == (settings.data_dir / "results").resolve()


def test_only_the_process_that_owns_the_index_runs_the_jobs(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    with Platform(settings) as owner:
        assert owner.series_jobs is not None
        with Platform(settings, migrate=False) as helper:
            assert helper.series_jobs is None
            assert helper.results.root == owner.results.root


@pytest.mark.parametrize(("option", "value"), [("workers", 0), ("max_pending", 0)])
def test_the_pool_is_bounded_and_needs_a_worker(
    platform: Platform, option: str, value: int
) -> None:
    with pytest.raises(ValueError, match=f"'{option}' must be >= 1, got {value}"):
        SeriesJobs(platform.series_media, **{option: value})  # type: ignore[arg-type]
