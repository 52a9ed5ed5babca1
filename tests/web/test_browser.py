"""The UI in headless Chromium (Debian's ``/usr/bin/chromium``) against a real uvicorn server.

One browser and one server per module; each test gets a fresh browser context (own cookies).
With ``KAAPANA_SCREENSHOTS=<folder>`` the main pages are saved there as PNG files.
"""

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from distributed import LocalCluster
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect, sync_playwright
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from kaapana.api import create_app
from kaapana.archive.events import SeriesQuietMonitor
from kaapana.auth.roles import RoleValues
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.web.security import CONTENT_SECURITY_POLICY
from tests.helpers import free_port, part10
from tests.web.conftest import (
    ADMIN_PASSWORD,
    HOSTILE_DESCRIPTION,
    HOSTILE_NAME,
    PASSWORD,
    populate,
    series_of,
    serving,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (make test does)"),
]


class Site:
    def __init__(self, url: str, platform: Platform) -> None:
        self.url = url
        self.platform = platform


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("browser") / "data",
        admin_password=ADMIN_PASSWORD,
        series_quiet_seconds=0.5,
    )
    with Platform(settings) as platform:
        populate(platform)
        app = create_app(settings, platform=platform)
        with TestClient(app), serving(app) as url:  # TestClient runs the app's lifespan
            yield Site(url, platform)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """A DICOM Verification SCP to C-ECHO from the nodes page."""
    ae = AE(ae_title="ECHOSCP")
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    yield port
    server.shutdown()


class Watched:
    """A page plus everything that must not happen on it: dialogs, CSP reports, script errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.problems: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))

    def _dialog(self, dialog: Dialog) -> None:
        """A confirm() the test answers itself is expected; anything else (alert) is not."""
        if dialog.type != "confirm":
            self.dialogs.append(dialog.message)
            dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        # A refused API call (a wrong password) logs "Failed to load resource"; that is expected.
        expected = message.text.startswith("Failed to load resource")
        if "Content Security Policy" in message.text or (message.type == "error" and not expected):
            self.problems.append(message.text)


@contextmanager
def watched_tab(browser: Browser, url: str) -> Iterator[Watched]:
    """A fresh browser context on ``url``; it fails the test on dialogs and script problems."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=url)
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.dialogs == []
    assert watched.problems == []


@pytest.fixture
def tab(browser: Browser, site: Site) -> Iterator[Watched]:
    with watched_tab(browser, site.url) as watched:
        yield watched


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("KAAPANA_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def log_in(page: Page, username: str, password: str, *, succeeds: bool = True) -> None:
    """Fill in the login form; a successful login leaves the login page for ``next``."""
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    if succeeds:
        page.wait_for_url(lambda url: "/login" not in url)


def test_login_with_a_wrong_password_then_the_right_one(tab: Watched) -> None:
    page = tab.page
    response = page.goto("/p/A/studies")
    assert response is not None and page.url.endswith("/login?next=/p/A/studies")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    screenshot(page, "login")
    log_in(page, "sci_a", "not-the-password", succeeds=False)
    expect(page.locator("#login-error")).to_have_text("unknown user or wrong password")
    log_in(page, "sci_a", PASSWORD)
    page.wait_for_url("**/p/A/studies")
    expect(page.get_by_role("heading", level=1)).to_have_text("Studies in A")


def test_the_project_switcher_changes_the_data(tab: Watched) -> None:
    page = tab.page
    page.goto("/login?next=/p/A/")
    log_in(page, "sci_ab", PASSWORD)
    page.wait_for_url("**/p/A/")
    table = page.locator("table.studies")
    expect(table).to_contain_text("PA")
    page.locator("details.switcher summary").click()
    page.get_by_role("link", name="B", exact=True).click()
    page.wait_for_url("**/p/B/")
    expect(table).to_contain_text("Bravo^Bob")
    expect(table).not_to_contain_text("PA")


def test_hostile_dicom_strings_render_as_text(tab: Watched) -> None:
    page = tab.page
    page.goto("/login?next=/p/A/studies")
    log_in(page, "sci_a", PASSWORD)
    page.wait_for_url("**/p/A/studies")
    name = page.locator("kp-study-series button")
    expect(name).to_have_text(HOSTILE_NAME)
    name.focus()
    page.keyboard.press("Enter")  # keyboard only: the series open below the study
    expect(name).to_have_attribute("aria-expanded", "true")
    rows = page.locator("tr.series-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(HOSTILE_DESCRIPTION)
    assert page.locator("main img, main script").count() == 0


def test_admin_creates_a_token_and_sees_it_once(tab: Watched, site: Site) -> None:
    page = tab.page
    page.goto("/login?next=/tokens")
    log_in(page, "admin", ADMIN_PASSWORD)
    page.wait_for_url("**/tokens")
    page.get_by_label("Name").fill("nightly-export")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret-value")
    expect(secret).to_have_text(re.compile(r"^kpt_\S+$"))
    user, token = site.platform.auth.tokens.verify(secret.inner_text())
    assert user.username == "admin" and token.name == "nightly-export"
    page.reload()
    expect(page.locator("#token-secret")).to_be_hidden()
    expect(page.locator("main table")).to_contain_text("nightly-export")
    assert secret.inner_text() == ""


def test_admin_creates_a_user_and_grants_a_role(tab: Watched, site: Site) -> None:
    page = tab.page
    page.goto("/login?next=/admin/users")
    log_in(page, "admin", ADMIN_PASSWORD)
    page.wait_for_url("**/admin/users")
    form = page.locator("#user-form")
    form.get_by_label("User name").fill("newbie")
    form.get_by_label("Password").fill("newbie-password-1")
    form.get_by_role("button", name="Create user").click()
    row = page.locator("tr[data-user=newbie]")
    expect(row).to_be_visible()
    row.get_by_label("Project for newbie").select_option("B")
    row.get_by_label("Role for newbie").select_option("scientist")
    row.get_by_role("button", name="Grant").click()
    expect(page.locator("tr[data-user=newbie]")).to_contain_text("B: scientist")
    newbie = site.platform.auth.users.get("newbie")
    b = site.platform.archive.projects.get("B")
    assert site.platform.auth.users.roles_of(newbie.id) == {b.id: RoleValues.scientist}
    screenshot(page, "admin-users")
    row = page.locator("tr[data-user=newbie]")
    row.get_by_label("active").uncheck()
    expect(page.locator("#kp-messages")).to_have_text("User newbie updated.")
    assert not site.platform.auth.users.get("newbie").is_active
    row.get_by_role("button", name="Reset password").click()
    page.locator("#reset-dialog").get_by_label("New password").fill("another-password-2")
    page.get_by_role("button", name="Set password", exact=True).click()
    expect(page.locator("#kp-messages")).to_contain_text("Password of newbie reset")
    stored = site.platform.auth.users.get("newbie").password_hash
    assert site.platform.auth.passwords.verify(stored, "another-password-2")


def test_admin_manages_a_project_and_a_node(tab: Watched, site: Site, echo_port: int) -> None:
    page = tab.page
    page.goto("/login?next=/admin/projects")
    log_in(page, "admin", ADMIN_PASSWORD)
    form = page.locator("#project-form")
    form.get_by_label("Name").fill("A")
    form.get_by_role("button", name="Create project").click()
    expect(page.locator("#kp-messages .error")).to_contain_text("'A'")  # the API's message
    form.get_by_label("Name").fill("C")
    form.get_by_label("AE title").fill("PROJ_C")
    form.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/admin/projects/C")
    page.get_by_label("Description").fill("Cardiac <b>cohort</b>")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#kp-messages")).to_have_text("Saved.")
    assert site.platform.archive.projects.get("C").description == "Cardiac <b>cohort</b>"
    members = page.locator("#member-form")
    members.get_by_label("User").select_option("sci_a")
    members.get_by_label("Role").select_option("principal_investigator")
    members.get_by_role("button", name="Grant role").click()
    member_row = page.locator("main table tr", has_text="sci_a")
    expect(member_row).to_contain_text("principal_investigator")
    member_row.get_by_role("button", name="Revoke").click()
    expect(page.locator("main")).to_contain_text("No members yet.")
    page.goto("/admin/nodes")
    nodes = page.locator("#node-form")
    for label, value in (("Name", "peer"), ("AE title", "ECHOSCP"), ("Host", "127.0.0.1")):
        nodes.get_by_label(label).fill(value)
    nodes.get_by_label("Port").fill(str(echo_port))
    nodes.get_by_role("button", name="Add node").click()
    page.get_by_role("button", name="Echo").click()
    expect(page.locator("output[data-result=peer]")).to_contain_text("answered in")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove").click()
    expect(page.locator("main")).to_contain_text("No DICOM nodes registered.")


def test_audit_lists_the_login_home_shows_counts_and_logout_ends_it(tab: Watched) -> None:
    page = tab.page
    page.goto("/login?next=/admin/audit%3Faction%3Dlogin")
    log_in(page, "admin", ADMIN_PASSWORD)
    page.wait_for_url("**/admin/audit?action=login")
    first = page.locator("table.audit tbody tr").first
    expect(first).to_contain_text("admin")
    expect(first).to_contain_text("login")
    screenshot(page, "admin-audit")
    page.goto("/p/A/")
    series = page.locator(".counts div", has_text="Series").locator("dd")
    expect(series).to_have_text("2")
    screenshot(page, "home")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto("/p/A/")
    assert page.url.endswith("/login?next=/p/A/")


@pytest.fixture(scope="module")
def workflow_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A site whose runs execute on a real Dask cluster; project A has a dataset ``cohort``."""
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: another cluster may hold the default one
        host="127.0.0.1",
    ) as cluster:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("workflows") / "data",
            admin_password=ADMIN_PASSWORD,
            dask_scheduler=cluster.scheduler_address,
            workflow_entry_points=False,
        )
        with Platform(settings) as platform:
            populate(platform)
            project = platform.archive.projects.get("A")
            uids = series_of(platform, "A")
            platform.datasets.create(project, "cohort", series_instance_uids=uids, actor="admin")
            app = create_app(settings, platform=platform)
            with TestClient(app), serving(app) as url:
                yield Site(url, platform)


def test_a_workflow_runs_from_its_form_to_its_manifest(
    browser: Browser, workflow_site: Site
) -> None:
    with watched_tab(browser, workflow_site.url) as tab:
        page = tab.page
        page.goto("/login?next=/p/A/")
        log_in(page, "sci_a", PASSWORD)
        page.get_by_role("link", name="Workflows").click()
        page.get_by_role("link", name="series-metadata").click()
        page.wait_for_url("**/p/A/workflows/series-metadata")
        indent = page.get_by_label("Indent", exact=True)
        indent.fill("9")
        indent.press("Tab")
        error = page.locator("#param-indent-error")
        expect(error).to_have_text("must be at most 8")
        expect(indent).to_have_attribute("aria-invalid", "true")
        screenshot(page, "workflow-form")
        page.get_by_role("button", name="Start run").click()
        expect(page).to_have_url(re.compile(r"/workflows/series-metadata$"))  # nothing was sent
        indent.fill("2")
        page.get_by_label("Series Instance UIDs", exact=True).check()
        page.get_by_label("Series Instance UIDs, one a line").fill("1.2.3.999")
        page.get_by_role("button", name="Start run").click()  # the server refuses the UID
        expect(page.locator("#input-error")).to_contain_text("1.2.3.999")
        page.get_by_label("a dataset").check()
        page.get_by_label("Dataset", exact=True).select_option("cohort")
        expect(error).to_have_text("")
        expect(page.locator("#input-error")).to_have_text("")
        page.get_by_role("button", name="Start run").click()
        page.wait_for_url(re.compile(r"/p/A/runs/\d+$"))
        expect(page.locator("#run-state")).to_have_text("succeeded", timeout=120_000)
        expect(page.locator("kp-run-dag svg g.dag-node")).to_have_count(1)
        expect(page.locator("#task-rows tr")).to_have_count(2)  # the CT and the MR series
        expect(page.locator("#task-rows")).not_to_contain_text("running")
        page.locator("#task-rows [data-log]").first.click()
        expect(page.locator("#log-text")).to_contain_text("wrote series.json with 2 files")
        manifest = page.locator("#manifest")
        expect(manifest).to_contain_text('"definition_hash"')
        expect(manifest).to_contain_text('"indent": 2')
        expect(page.locator("#artifacts")).to_contain_text("manifest.json")
        expect(page.get_by_role("button", name="Rerun")).to_be_visible()
        expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
        screenshot(page, "run")
        page.get_by_role("link", name="Runs", exact=True).click()
        expect(page.locator("#run-rows")).to_contain_text("succeeded")
        expect(page.locator("#run-rows")).to_contain_text("2/2")


def test_segment_ct_runs_from_its_form_and_its_seg_overlays_the_ct(
    browser: Browser, workflow_site: Site
) -> None:
    platform = workflow_site.platform
    target = platform.archive.target("A")
    ct = ct_series(patient_id="PSEG", rows=32, columns=32, slices=12, pixel_spacing=8.0, seed=5)
    for ds in ct:
        platform.archive.store_bytes(part10(ds), target)
    ct_uid = str(ct[0].SeriesInstanceUID)
    with watched_tab(browser, workflow_site.url) as tab:
        page = tab.page
        page.goto("/login?next=/p/A/workflows/segment-ct")
        log_in(page, "sci_a", PASSWORD)
        page.get_by_label("Series Instance UIDs", exact=True).check()
        page.get_by_label("Series Instance UIDs, one a line").fill(ct_uid)
        page.get_by_role("button", name="Start run").click()
        page.wait_for_url(re.compile(r"/p/A/runs/\d+$"))
        expect(page.locator("#run-state")).to_have_text("succeeded", timeout=180_000)
        expect(page.locator("#task-rows tr")).to_have_count(1)
        run_id = int(page.url.rsplit("/", 1)[1])
        (seg,) = platform.workflows.manifest(run_id)["outputs"]["dicom"]
        # The SEG's reference is recorded once the SEG series has arrived (gone quiet): the
        # monitor that `kaapana serve` polls announces it.
        monitor = SeriesQuietMonitor(platform.engine, platform.events, quiet_seconds=0.1)
        page.goto(f"/p/A/series/{ct_uid}")
        legend = page.locator("#legend")
        for _ in range(60):
            if legend.count():
                break
            monitor.poll()
            page.wait_for_timeout(500)
            page.reload()
        for label in ("body", "lungs", "bones"):
            expect(legend).to_contain_text(label)
        page.get_by_role("link", name=re.compile(r"^SEG · ")).click()
        expect(page.locator("#metadata-search")).to_be_visible()
        page.locator("#metadata-search").fill("SOPInstanceUID")
        expect(page.locator(".metadata-table")).to_contain_text(seg["sop_instance_uid"])
