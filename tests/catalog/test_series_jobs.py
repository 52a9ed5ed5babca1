"""The catalog's work on SeriesArrived as the service workflow ``series-media``: one run per
arriving series started by the system trigger rule, failures kept in the run, nothing lost when
no scheduler runs, and the runs the platform's own (shown to administrators only)."""

import fcntl
from collections.abc import Callable

import pytest
from sqlalchemy import select

from kaapana.archive import SeriesQuietMonitor
from kaapana.catalog import thumbnail_key
from kaapana.catalog.series_workflow import SERIES_MEDIA
from kaapana.config import Settings
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Series, SeriesValidation
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.platform import Platform
from kaapana.testing import ct_series
from tests.catalog.helpers import arrive, series_media_runs, store


def _validated(platform: Platform) -> list[str]:
    with session_factory(platform.engine)() as session:
        return list(
            session.scalars(
                select(Series.series_instance_uid).join(
                    SeriesValidation, SeriesValidation.series_pk == Series.id
                )
            )
        )


def test_a_failing_series_fails_its_run_and_the_next_one_is_still_processed(
    platform: Platform,
) -> None:
    broken = ct_series(rows=16, columns=16, slices=3, seed=31, series_number=1)
    store(platform, broken)
    with session_factory(platform.engine)() as session:
        keys = session.scalars(select(Instance.storage_key)).all()
    for key in keys:
        platform.store.delete(key)  # the files are gone, the index rows remain
    [failed] = arrive(platform)
    assert failed.state == "failed"
    assert failed.series_instance_uids == [broken[0].SeriesInstanceUID]
    assert failed.created_by == f"trigger:{SERIES_MEDIA}" and failed.service
    assert failed.tasks[0].error

    good = ct_series(rows=16, columns=16, slices=3, seed=32, series_number=2)
    store(platform, good)
    runs = arrive(platform)
    assert [r.state for r in runs] == ["succeeded", "failed"]
    assert platform.results.exists(thumbnail_key(good[0].SeriesInstanceUID))
    assert _validated(platform) == [good[0].SeriesInstanceUID]


def test_a_series_arriving_while_no_scheduler_runs_is_processed_on_the_next_start(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    settings.data_dir.mkdir(parents=True)
    ct = ct_series(rows=16, columns=16, slices=5, seed=33)
    # Another process schedules (or none yet): this one may record runs but not run them.
    with (settings.data_dir / "workflows.lock").open("ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with Platform(settings) as platform:
            store(platform, ct)
            monitor = SeriesQuietMonitor(platform.engine, platform.events, quiet_seconds=0.001)
            while not monitor.poll():
                pass
            assert platform.workflows.list_runs() == []  # not among the researchers' runs
            [queued] = platform.workflows.list_runs(services=True)
            assert (queued.workflow, queued.state) == (SERIES_MEDIA, "queued")
            assert not platform.results.exists(thumbnail_key(ct[0].SeriesInstanceUID))
    with Platform(settings) as platform:
        assert platform.workflows.start()
        [run] = series_media_runs(platform)
        assert run.state == "succeeded"
        assert platform.results.exists(thumbnail_key(ct[0].SeriesInstanceUID))
        assert _validated(platform) == [ct[0].SeriesInstanceUID]


def test_service_runs_and_the_system_rule_are_the_platforms_own(platform: Platform) -> None:
    ct = ct_series(rows=16, columns=16, slices=2, seed=34)
    store(platform, ct)
    [run] = arrive(platform)
    admin_pk = platform.archive.projects.get("admin").id
    triggers = platform.workflows.triggers
    [rule] = triggers.rules()
    assert (rule.name, rule.workflow, rule.system) == (SERIES_MEDIA, SERIES_MEDIA, True)
    assert run.project == "admin"  # the series' project
    # Administrators list them only when they ask: one per series would bury the other runs.
    assert platform.workflows.list_runs() == []
    [listed] = platform.workflows.list_runs(services=True)
    assert (listed.id, listed.service) == (run.id, True)
    # A member of the admin project who is no administrator sees neither.
    members = frozenset({admin_pk})
    assert platform.workflows.list_runs(scope=members) == []
    with pytest.raises(NotFound):
        platform.workflows.get_run(run.id, scope=members)
    assert triggers.rules(scope=members) == []
    with pytest.raises(Conflict, match="system rule"):
        triggers.remove(project_pk=admin_pk, name=SERIES_MEDIA)
    with pytest.raises(Conflict, match="system rule"):
        triggers.set_enabled(project_pk=admin_pk, name=SERIES_MEDIA, enabled=False)
    with pytest.raises(Conflict, match="system rule"):
        triggers.add(project_pk=admin_pk, name=SERIES_MEDIA, workflow="noop")
    with pytest.raises(InvalidInput, match="only the platform starts it"):
        triggers.add(project_pk=admin_pk, name="again", workflow=SERIES_MEDIA)
    assert [r.name for r in triggers.rules()] == [SERIES_MEDIA]


def test_only_the_process_that_owns_the_index_has_the_system_rule(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    with Platform(settings) as owner:
        assert [r.name for r in owner.workflows.triggers.rules()] == [SERIES_MEDIA]
        with Platform(settings, migrate=False) as helper:
            assert helper.workflows.triggers.rules() == []
            assert helper.results.root == owner.results.root
