"""Trigger rules start workflows when series arrive; queries need the catalog's matcher."""

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
