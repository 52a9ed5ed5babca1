"""Platform actions: what tasks ask of the platform is done on the scheduler side, or refused."""

from collections.abc import Callable
from pathlib import Path

import pytest

from kaapana.errors import InvalidInput
from kaapana.workflows import ModeValues, Step, TaskContext, Workflow
from tests.workflows import operators
from tests.workflows.conftest import Site


def _run(site: Site, operator: Callable[..., None], mode: ModeValues) -> dict[str, str]:
    engine = site.platform.workflows
    engine.registry.add(
        Workflow(name="act", version="1", steps=[Step(name="act", operator=operator, mode=mode)])
    )
    run = engine.start_run(project_pk=site.project_pk, workflow="act", dataset="cohort")
    done = engine.wait(run.id, timeout=120)
    return {"state": done.state, "error": " ".join(t.error or "" for t in done.tasks)}


def _tagged(site: Site) -> dict[str, int]:
    return {t.tag: t.series for t in site.platform.catalog.tags(project_pk=site.project_pk)}


def test_tag_series_requested_by_per_series_tasks_tags_each_series(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(series=2)
    assert _run(site, operators.tag_as_reviewed, ModeValues.per_series)["state"] == "succeeded"
    assert _tagged(site) == {"reviewed": 2}


@pytest.mark.parametrize(
    ("operator", "message"),
    [
        (operators.ask_the_unknown, "unknown platform actions ['launch-rockets']"),
        (operators.tag_a_stranger, "may tag its input series only"),
    ],
)
def test_refused_requests_fail_the_task_and_change_nothing(
    make_site: Callable[..., Site], operator: Callable[..., None], message: str
) -> None:
    site = make_site(series=1)
    outcome = _run(site, operator, ModeValues.per_run)
    assert outcome["state"] == "failed" and message in outcome["error"]
    assert _tagged(site) == {}


def test_a_payload_that_is_not_json_is_refused_in_the_operator(tmp_path: Path) -> None:
    ctx = TaskContext(
        run_id=1,
        task_id=1,
        attempt=1,
        workflow="w",
        step="s",
        project="p",
        params={},
        series=(),
        workflow_dir=tmp_path,
        input_step="get-input-data",
        per_series=False,
        log_path=tmp_path / "log",
    )
    with pytest.raises(InvalidInput, match="not JSON"):
        ctx.request("tag-series", add={object()})
