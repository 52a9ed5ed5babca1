"""Workflow and run pages through the real app: access, scoping, escaping, the home page's runs."""

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from kaapana.api import create_app
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.workflows.views import RunDetailView
from tests.web.conftest import ADMIN_PASSWORD, login, populate, series_of


def queued_run(web: TestClient, project: str, *, params: dict[str, object]) -> RunDetailView:
    """A run recorded but not scheduled (``start=False``): it stays queued while the test looks."""
    platform: Platform = web.app.state.platform  # type: ignore[attr-defined]
    return platform.workflows.start_run(
        project_pk=platform.archive.projects.get(project).id,
        workflow="series-metadata",
        series=series_of(platform, project),
        params=params,
        created_by="sci_a",
        start=False,
    )


def test_members_see_the_workflows_and_the_form(web: TestClient) -> None:
    login(web, "sci_a")
    listing = web.get("/p/A/workflows")
    assert listing.status_code == 200
    assert 'href="/p/A/workflows/series-metadata"' in listing.text
    assert 'href="/p/A/workflows" aria-current="page"' in listing.text
    assert "Sources that failed to load" not in listing.text
    form = web.get("/p/A/workflows/series-metadata", params={"series": "1.2.3, 1.2.4"})
    assert form.status_code == 200
    assert 'id="run-form"' in form.text
    assert '"series": ["1.2.3", "1.2.4"]' in form.text
    assert '"indent"' in form.text  # the parameters' JSON Schema reaches the script
    assert '"dataset": "cohort"' in web.get("/p/A/workflows/noop?dataset=cohort").text


def test_unknown_workflows_and_foreign_projects_are_not_found(web: TestClient) -> None:
    run = queued_run(web, "A", params={})
    login(web, "sci_b")
    for path in ("/p/A/workflows", "/p/A/workflows/noop", "/p/A/runs", f"/p/A/runs/{run.id}"):
        assert web.get(path).status_code == 404, path
    assert web.get(f"/p/B/runs/{run.id}").status_code == 404  # a run of A is not B's
    assert web.get("/p/B/workflows/no-such-workflow").status_code == 404
    assert web.get("/p/B/runs/0").status_code == 400


def test_run_pages_show_the_run_with_its_data_escaped(web: TestClient) -> None:
    run = queued_run(web, "A", params={"indent": 2})
    login(web, "sci_a")
    runs = web.get("/p/A/runs")
    assert runs.status_code == 200
    assert f'href="/p/A/runs/{run.id}"' in runs.text
    assert '<span class="state state-queued">queued</span>' in runs.text
    assert f"0/{len(run.tasks)}" in runs.text
    detail = web.get(f"/p/A/runs/{run.id}")
    assert detail.status_code == 200
    assert f"Run #{run.id}: series-metadata" in detail.text
    assert '"canWrite": true' in detail.text
    assert 'data-run-action="cancel"' in detail.text
    assert "<script>alert" not in detail.text


def test_the_home_page_lists_the_projects_running_runs(web: TestClient) -> None:
    login(web, "sci_a")
    assert "No running workflows." in web.get("/p/A/").text
    run = queued_run(web, "A", params={})
    home = web.get("/p/A/").text
    assert f'<a href="/p/A/runs/{run.id}">#{run.id} series-metadata</a>' in home
    assert "No running workflows." not in home
    login(web, "sci_ab")
    assert f"/runs/{run.id}" not in web.get("/p/B/").text


def test_administrators_see_the_sources_that_failed_to_load(
    make_settings: Callable[..., Settings], database_url: str | None, tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text('raise RuntimeError("<b>no such scanner</b>")\n')
    settings = make_settings(
        admin_password=ADMIN_PASSWORD, database_url=database_url, plugins_dir=plugins
    )
    with Platform(settings) as platform:
        populate(platform)
        with TestClient(create_app(settings, platform=platform)) as web:
            login(web, "admin", ADMIN_PASSWORD)
            page = web.get("/p/admin/workflows").text
            assert "Sources that failed to load" in page
            assert "broken.py" in page
            assert "&lt;b&gt;no such scanner&lt;/b&gt;" in page
            assert "<b>no such" not in page
            login(web, "sci_a")
            assert "Sources that failed to load" not in web.get("/p/A/workflows").text
