"""Trigger rules start workflows when series arrive; queries need the catalog's matcher."""

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from kaapana.archive import SeriesArrived, SeriesQuietMonitor
from kaapana.db.models import Series
from kaapana.errors import Conflict, InvalidInput, NotFound
from kaapana.workflows import Engine
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
    with pytest.raises(InvalidInput, match="catalog queries are not available"):
        triggers.add(
            project_pk=site.project_pk, name="q", workflow="noop", query={"Modality": "SEG"}
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
    runs = site.platform.workflows.list_runs()
    assert sorted(r.created_by for r in runs) == ["trigger:meta", "trigger:meta"]
    for run in runs:
        assert site.platform.workflows.wait(run.id, timeout=60).state == "succeeded"
    assert sorted(
        site.platform.workflows.get_run(r.id).series_instance_uids[0] for r in runs
    ) == sorted(uids)
    triggers.set_enabled(project_pk=site.project_pk, name="meta", enabled=False)
    triggers.remove(project_pk=site.project_pk, name="meta")
    assert triggers.rules() == []
    with pytest.raises(NotFound):
        triggers.remove(project_pk=site.project_pk, name="meta")


def test_a_query_rule_asks_the_matcher(make_site: Callable[..., Site]) -> None:
    site = make_site(series=0)
    platform = site.platform
    asked: list[tuple[int, int, dict[str, Any]]] = []

    def matches(project_pk: int, series_pk: int, query: dict[str, Any]) -> bool:
        asked.append((project_pk, series_pk, query))
        with platform.archive._sessions() as session:
            modality = session.scalar(select(Series.modality).where(Series.id == series_pk))
        return modality == query["Modality"]

    engine = Engine(
        settings=platform.settings,
        engine=platform.engine,
        archive=platform.archive,
        results=platform.results,
        matches_query=matches,
    )
    engine.triggers.add(
        project_pk=site.project_pk, name="ct", workflow="noop", query={"Modality": "CT"}
    )
    engine.triggers.add(
        project_pk=site.project_pk, name="seg", workflow="noop", query={"Modality": "SEG"}
    )
    [uid] = store_series(platform, 1)
    started = engine.triggers.on_series_arrived(SeriesArrived("1.2", uid, "CT", 2))
    assert len(started) == 1 and len(asked) == 2
    assert engine.get_run(started[0]).created_by == "trigger:ct"
    engine.close()
