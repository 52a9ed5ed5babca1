"""The sites page and the federated execution form in headless Chromium against uvicorn.

The site holds jobs from its orchestrator waiting for approval (received through the
participant's service, as its poller would), two participants of its own and a hostile site
name. Shares the browser and the page watcher of ``test_browser``; with
``KAAPANA_SCREENSHOTS=<folder>`` it saves sites.png and federated-form.png.
"""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from kaapana.api import create_app
from kaapana.config import Settings
from kaapana.federation.states import ApprovalValues
from kaapana.platform import Platform
from tests.web import test_browser as shared
from tests.web.conftest import ADMIN_PASSWORD, HOSTILE_NAME, populate, series_of, serving
from tests.web.federation_state import PENDING, WORKFLOW, federate
from tests.web.test_browser import CHROMIUM, Site, Watched, log_in, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (make test does)"),
]
browser = shared.browser
tab = shared.tab


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("sites") / "data",
        admin_password=ADMIN_PASSWORD,
        site_name=HOSTILE_NAME,
    )
    with Platform(settings) as platform:
        populate(platform)
        federate(platform)
        project_b = platform.archive.projects.get("B")
        platform.datasets.create(
            project_b, "bravo", series_instance_uids=series_of(platform, "B"), actor="admin"
        )
        app = create_app(settings, platform=platform)
        with TestClient(app), serving(app) as url:
            yield Site(url, platform)


def test_an_administrator_approves_and_denies_pending_jobs(tab: Watched, site: Site) -> None:
    page = tab.page
    page.goto("/login?next=/p/A/")
    log_in(page, "admin", ADMIN_PASSWORD)
    expect(page.locator(".pending-approvals")).to_contain_text("2 federated jobs wait")
    page.get_by_role("link", name="decide on the sites page").click()
    page.wait_for_url("**/sites")
    expect(page.locator("#site-name")).to_have_text(HOSTILE_NAME)
    expect(page.locator("tr[data-peer=hospital-b]")).to_contain_text(HOSTILE_NAME)
    pending = page.locator(".pending > li")
    expect(pending).to_have_count(2)
    expect(pending.first).to_contain_text(f"Requester{HOSTILE_NAME}")
    assert page.locator("main img, main script").count() == 0
    screenshot(page, "sites")

    approve, deny = PENDING
    page.locator(f"[data-approve={approve}]").click()
    expect(page.locator(f".pending > li[data-job={approve}]")).to_have_count(0)
    expect(pending).to_have_count(1)
    assert site.platform.federation.jobs.get(approve).state == "approved"
    page.get_by_label("Reason").fill("not before the ethics amendment")
    page.locator(f"[data-deny={deny}]").click()
    expect(page.locator("#pending-h + .empty")).to_have_text("No federated jobs wait for approval.")
    denied = site.platform.federation.jobs.get(deny)
    assert (denied.state, denied.reason) == ("denied", "not before the ethics amendment")
    assert denied.decided_by == "admin"
    expect(page.locator(f"table.jobs tr[data-job={deny}]")).to_contain_text("denied")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"[data-cancel-job={approve}]").click()
    expect(page.locator(f"table.jobs tr[data-job={approve}]")).to_contain_text("canceled")
    assert site.platform.federation.jobs.get(approve).state == "canceled"


def test_the_policies_editor_allows_workflows_and_exposes_datasets(
    tab: Watched, site: Site
) -> None:
    page = tab.page
    policies = site.platform.federation.policies
    page.goto("/login?next=/sites")
    log_in(page, "admin", ADMIN_PASSWORD)
    allow = page.locator("#allow-form")
    allow.get_by_label("Workflow").select_option("series-metadata")
    allow.get_by_label("Approval").select_option("automatic")
    allow.get_by_label("Output size limit (bytes)").fill("4096")
    allow.get_by_label("pixel data may leave").check()
    allow.get_by_role("button", name="Allow").click()
    row = page.locator("form[data-policy=series-metadata]")
    expect(row).to_be_visible()
    allowed = policies.find("series-metadata")
    assert allowed is not None
    assert (allowed.approval, allowed.max_output_bytes, allowed.allow_pixel_data) == (
        ApprovalValues.automatic,
        4096,
        True,
    )
    installed = site.platform.workflows.registry.get("series-metadata").definition_hash
    assert allowed.definition_hash == installed

    statistics = page.locator(f"form[data-policy={WORKFLOW}]")
    statistics.get_by_label("Approval").select_option("automatic")
    statistics.get_by_role("button", name="Save").click()
    expect(statistics).to_contain_text("by admin")  # reloaded with the saved policy
    expect(statistics.get_by_label("Approval")).to_have_value("automatic")
    changed = policies.find(WORKFLOW)
    assert changed is not None and changed.approval is ApprovalValues.automatic

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_have_count(0)
    assert policies.find("series-metadata") is None

    expose = page.locator("#expose-form")
    expose.get_by_label("Dataset").select_option("bravo")
    expose.get_by_label("Exposed as").fill("b-cohort")
    expose.get_by_role("button", name="Expose").click()
    exposed = page.locator("tr[data-exposure=b-cohort]")
    expect(exposed).to_contain_text("B")
    assert policies.resolve("b-cohort")[1] == "bravo"
    page.once("dialog", lambda dialog: dialog.accept())
    exposed.get_by_role("button", name="Unexpose").click()
    expect(exposed).to_have_count(0)
    assert [e.name for e in policies.exposures()] == ["cohort"]


def test_a_federated_run_starts_from_the_workflow_form(tab: Watched, site: Site) -> None:
    page = tab.page
    page.goto(f"/login?next=/p/A/workflows/{WORKFLOW}")
    log_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_role("button", name="Start run").click()
    expect(page.locator("#fed-error")).to_have_text("Name the dataset every site exposes.")
    page.get_by_label("hospital-c").uncheck()
    page.get_by_label("Exposed dataset at every site").fill("cohort")
    page.get_by_label("Seconds per site and round").fill("600")
    expect(page.locator("#fed-error")).to_have_text("")  # checked again while typing
    screenshot(page, "federated-form")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url("**/sites/runs/*")
    (run,) = site.platform.federation.runs.list()
    assert (run.plan, run.dataset, run.sites, run.site_timeout) == (
        WORKFLOW,
        "cohort",
        ["hospital-b"],
        600.0,
    )
    expect(page.locator("h1")).to_have_text(f"Federated run #{run.id}: {WORKFLOW}")
    expect(page.locator(".facts")).to_contain_text(
        "hospital-b (at least 1 per round, 600.0 s each)"
    )
    screenshot(page, "federated-run")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".facts .state")).to_have_text("canceled")
    assert site.platform.federation.runs.get(run.id).state == "canceled"
    page.get_by_role("link", name="Sites").first.click()
    expect(page.locator(f"tr[data-run='{run.id}']")).to_contain_text("hospital-b")


def test_an_administrator_enrols_and_removes_a_participant(tab: Watched, site: Site) -> None:
    page = tab.page
    page.goto("/login?next=/sites")
    log_in(page, "admin", ADMIN_PASSWORD)
    expect(page.locator("#orchestrator-form")).to_have_count(0)  # it polls "central" already
    form = page.locator("#participant-form")
    form.get_by_label("Participant site").fill("hospital-d")
    form.get_by_role("button", name="Enrol participant").click()
    expect(page.locator("#enrolment")).to_be_visible()
    expect(page.locator("#enrolled-site")).to_have_text("hospital-d")
    secret = page.locator("#enrolment-secret").text_content()
    sites = site.platform.federation.sites
    assert secret and sites.get("hospital-d").role.value == "participant"
    page.get_by_role("link", name="Done").click()
    row = page.locator("tr[data-peer=hospital-d]")
    expect(row).to_contain_text("participant")
    expect(page.locator("#enrolment-secret")).to_have_count(1)
    expect(page.locator("#enrolment")).to_be_hidden()  # shown once, not again
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Remove").click()
    expect(row).to_have_count(0)
    assert "hospital-d" not in [s.name for s in sites.list()]
