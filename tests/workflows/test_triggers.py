"""Trigger rules start workflows when series arrive; queries need the catalog's matcher."""

import time
from collections.abc import Callable

import pytest

from kaapana.archive import SeriesArrived, SeriesQuietMonitor
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.workflows.views import RunView
from tests.helpers import wait_until
from tests.workflows.conftest import Site, store_series


def _arrive(site: Site, count: int) -> None:
    """The series monitor announces the stored series, as in `kaapana serve`."""
    monitor = SeriesQuietMonitor(site.platform.engine, site.platform.events, quiet_seconds=0.01)
    announced: list[SeriesArrived] = []

    def enough() -> bool:
        announced.extend(monitor.poll())
        return len(announced) >= count

    wait_until(enough, timeout=10, what="stable series")


def _user_runs(site: Site) -> list[RunView]:
    """The runs the users' rules started (each arriving series has a service run too)."""
    return site.platform.workflows.list_runs()


def test_a_rule_without_query_starts_a_run_per_arriving_series(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    triggers = site.platform.workflows.triggers
    rule = triggers.add(
        project_pk=site.project_pk, name="meta", workflow="series-metadata", params={"indent": 1}
    )
    assert rule.params == {"indent": 1} and rule.enabled
    with pytest.raises(Conflict, match="exists already"):
        triggers.add(project_pk=site.project_pk, name="meta", workflow="series-metadata")
    with pytest.raises(InvalidInput, match="unknown field 'Modalty'"):
        triggers.add(
            project_pk=site.project_pk,
            name="q",
            workflow="noop",
            query={"where": {"field": "Modalty", "op": "=", "value": "SEG"}},
        )
    with pytest.raises(InvalidInput, match="indent"):
        triggers.add(
            project_pk=site.project_pk,
            name="bad",
            workflow="series-metadata",
            params={"indent": -1},
        )
    uids = store_series(site.platform, 2)
    _arrive(site, 2)
    runs = _user_runs(site)
    assert sorted(r.created_by for r in runs) == ["trigger:meta", "trigger:meta"]
    for run in runs:
        assert site.platform.workflows.wait(run.id, timeout=60).state == "succeeded"
    assert sorted(
        site.platform.workflows.get_run(r.id).series_instance_uids[0] for r in runs
    ) == sorted(uids)
    triggers.set_enabled(project_pk=site.project_pk, name="meta", enabled=False)
    triggers.remove(project_pk=site.project_pk, name="meta")
    assert [r.name for r in triggers.rules()] == ["series-media"]  # the system rule
    with pytest.raises(NotFound):
        triggers.remove(project_pk=site.project_pk, name="meta")


def test_a_query_rule_starts_only_for_series_the_catalog_matches(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    triggers = site.platform.workflows.triggers
    for name, modality in (("ct", "CT"), ("seg", "SEG")):
        triggers.add(
            project_pk=site.project_pk,
            name=name,
            workflow="noop",
            query={"where": {"field": "Modality", "op": "=", "value": modality}},
        )
    [uid] = store_series(site.platform, 1)
    _arrive(site, 1)  # the catalog indexes the series first, then the rules ask it
    [run] = _user_runs(site)
    assert run.created_by == "trigger:ct"
    assert site.platform.workflows.get_run(run.id).series_instance_uids == [uid]


class _Crash(BaseException):
    """The process dying in the middle of an announcement: nothing after it runs."""


def test_an_announcement_cut_short_is_made_again_after_restart_without_duplicate_runs(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=0)
    site.platform.workflows.triggers.add(
        project_pk=site.project_pk, name="meta", workflow="series-metadata"
    )
    uids = store_series(site.platform, 2)
    crashing = [True]

    def crash(event: SeriesArrived) -> None:  # subscribed last: after catalog and triggers
        if crashing[0]:
            raise _Crash

    site.platform.events.subscribe(SeriesArrived, crash)
    monitor = SeriesQuietMonitor(site.platform.engine, site.platform.events, quiet_seconds=0.01)
    time.sleep(0.1)  # both quiet: one poll marks both stable
    with pytest.raises(_Crash):  # the first series' handlers ran, then the crash
        monitor.poll()
    assert len(_user_runs(site)) == 1
    crashing[0] = False
    restarted = SeriesQuietMonitor(site.platform.engine, site.platform.events, quiet_seconds=0.01)
    replayed = restarted.poll()
    assert sorted(e.series_instance_uid for e in replayed) == sorted(uids)
    assert all(e.replayed for e in replayed)
    runs = _user_runs(site)
    assert len(runs) == 2  # the second series' run now; the first series' run not again
    started = [site.platform.workflows.get_run(r.id).series_instance_uids for r in runs]
    assert sorted(uid for inputs in started for uid in inputs) == sorted(uids)
    assert restarted.poll() == []  # announced for good
