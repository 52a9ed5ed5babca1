"""The gallery, the dashboard and the datasets pages in headless Chromium against uvicorn.

A project of synthetic CT (one with a SEG) and MR series, indexed and with their thumbnails
made, as the server does on arrival. Shares the browser and the page watcher of
``test_browser``; with ``KAAPANA_SCREENSHOTS=<folder>`` it saves gallery.png and dashboard.png.
"""

import re
from collections.abc import Iterator
from datetime import date
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from kaapana.api import create_app
from kaapana.auth.roles import RoleValues
from kaapana.catalog import parse_query, process_arrived_series
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_segmentation, ct_series, mr_series
from tests.helpers import part10
from tests.web import test_browser as shared
from tests.web.conftest import ADMIN_PASSWORD, HOSTILE_DESCRIPTION, HOSTILE_NAME, PASSWORD, serving
from tests.web.test_browser import CHROMIUM, Site, Watched, log_in, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (make test does)"),
]
SIZE = {"rows": 32, "columns": 32, "slices": 4}
browser = shared.browser  # one Chromium per module, and the same watcher of dialogs and errors
tab = shared.tab


def populate_gallery(platform: Platform) -> None:
    """Project G: patient GA's CT (2023) with its SEG, patient GB's CT and MR (2024)."""
    platform.archive.projects.create("G", ae_title="PROJ_G")
    platform.auth.users.create("curator", password=PASSWORD)
    platform.auth.users.set_role(
        "curator", platform.archive.projects.get("G"), RoleValues.scientist
    )
    ct_a = ct_series(patient_id="GA", study_date=date(2023, 5, 2), seed=3, **SIZE)
    ct_b = ct_series(
        patient_id="GB",
        patient_name=HOSTILE_NAME,
        study_date=date(2024, 2, 9),
        slice_thickness=1.0,
        seed=4,
        **SIZE,
    )
    mr_b = mr_series(
        patient_id="GB",
        patient_name=HOSTILE_NAME,
        study_instance_uid=ct_b[0].StudyInstanceUID,
        study_date=date(2024, 2, 9),
        series_description=HOSTILE_DESCRIPTION,
        seed=4,
        **SIZE,
    )
    seg = ct_segmentation(ct_a, seed=3)
    target = platform.archive.target("G")
    for ds in [*ct_a, seg, *ct_b, *mr_b]:
        platform.archive.store_bytes(part10(ds), target)
    platform.catalog.reindex()
    for series in (ct_a, [seg], ct_b, mr_b):  # images first, so the SEG's thumbnail has its CT
        process_arrived_series(platform.series_media, series[0].SeriesInstanceUID)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("gallery") / "data", admin_password=ADMIN_PASSWORD
    )
    with Platform(settings) as platform:
        populate_gallery(platform)
        app = create_app(settings, platform=platform)
        with TestClient(app), serving(app) as url:
            yield Site(url, platform)


def test_curate_a_cohort_in_the_gallery_and_chart_it(tab: Watched, site: Site) -> None:
    page = tab.page
    page.goto("/login?next=/p/G/gallery")
    log_in(page, "curator", PASSWORD)
    page.wait_for_url("**/p/G/gallery")
    cards = page.locator("#cards .series-card")
    expect(cards).to_have_count(4)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#cards img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    expect(page.locator("#cards .patient", has_text=HOSTILE_NAME)).to_have_count(2)
    expect(page.locator("#cards .description", has_text=HOSTILE_DESCRIPTION)).to_have_count(1)
    assert page.locator("main img").count() == 4  # no markup came out of the DICOM strings
    expect(page.locator("#cards .validation").first).not_to_have_text("…")
    screenshot(page, "gallery")

    page.locator("fieldset[data-field=Modality] input[data-value=CT]").check()
    expect(cards).to_have_count(2)
    assert "f=Modality:CT" in unquote(page.url)
    expect(page.locator("#result-count")).to_have_text("2 series")
    expect(cards.locator(".modality")).to_have_text(["CT", "CT"])

    cards.nth(0).click()
    cards.nth(1).click(modifiers=["Shift"])
    expect(page.locator("#selection-count")).to_have_text("2 selected")
    page.get_by_label("Dataset", exact=True).fill("ct cohort")
    page.get_by_role("button", name="Create dataset").click()
    expect(page.locator("#kp-messages")).to_have_text("Dataset ct cohort created with 2 series.")

    cards.nth(0).focus()
    page.keyboard.press("1")  # the tag of key 1: reviewed
    expect(cards.locator(".tags li", has_text="reviewed")).to_have_count(2)
    g = site.platform.archive.projects.get("G")
    assert {t.tag: t.series for t in site.platform.catalog.tags(project_pk=g.id)} == {"reviewed": 2}

    page.get_by_role("button", name="Clear selection").click()
    cards.nth(1).click()
    page.get_by_role("button", name="Remove from dataset").click()
    expect(page.locator("#kp-messages")).to_have_text(
        "1 series removed from ct cohort; it has 1 now."
    )
    page.get_by_role("button", name="Add to dataset").click()
    expect(page.locator("#kp-messages")).to_have_text("1 series added to ct cohort; it has 2 now.")

    page.get_by_role("link", name="Datasets").click()
    row = page.locator("tr[data-dataset='ct cohort']")
    expect(row.locator(".series-count")).to_have_text("2")
    row.get_by_role("link", name="ct cohort").click()
    expect(page.locator("main .series-card")).to_have_count(2)
    page.get_by_label("Description").fill("thorax CT <b>both</b>")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#kp-messages")).to_have_text("Saved.")
    expect(page.locator("#dataset-description")).to_have_text("thorax CT <b>both</b>")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("[data-total=series]")).to_have_text("4")
    bars = page.locator("figure.chart").first.locator("a.bar")
    expect(bars).to_have_count(3)
    counts = dict(
        zip(
            bars.evaluate_all("bs => bs.map((b) => b.dataset.label)"),
            bars.evaluate_all("bs => bs.map((b) => Number(b.dataset.count))"),
            strict=True,
        )
    )
    assert counts == {"CT": 2, "MR": 1, "SEG": 1}
    assert bars.locator("rect").count() == 3
    screenshot(page, "dashboard")
    page.locator("a.bar[data-label=MR]").click()
    page.wait_for_url(re.compile(r"/p/G/gallery\?f=Modality%3AMR$"))
    expect(cards).to_have_count(1)
    expect(cards.locator(".description")).to_have_text(HOSTILE_DESCRIPTION)

    page.get_by_role("link", name="Gallery").click()
    page.get_by_label("Group by patient and study").check()
    page.wait_for_url("**/p/G/gallery?group=1")
    expect(page.locator("#cards h2.group")).to_have_count(2)
    expect(page.locator("#cards h2.group").first).to_contain_text("GA")
    expect(cards).to_have_count(4)
    cards.nth(3).focus()
    page.keyboard.press("Space")
    expect(cards.nth(3)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#selection-count")).to_have_text("0 selected")
    page.get_by_role("button", name="Select all results").click()
    expect(page.locator("#selection-count")).to_have_text("4 selected")

    page.locator("#workflow-name").select_option("series-metadata")
    page.get_by_role("button", name="Run on selection…").click()
    page.wait_for_url(re.compile(r"/p/G/workflows/series-metadata\?series="))
    chosen = page.locator("#input-series").input_value().split()
    every = site.platform.catalog.search(project_pk=g.id, query=parse_query(None), limit=10)
    assert sorted(chosen) == sorted(hit.series_instance_uid for hit in every.items)


def test_an_administrator_deletes_the_selected_series(tab: Watched, site: Site) -> None:
    page = tab.page
    page.goto("/login?next=/p/G/gallery%3Ff%3DModality%3ASEG")
    log_in(page, "admin", ADMIN_PASSWORD)
    cards = page.locator("#cards .series-card")
    expect(cards).to_have_count(1)
    uid = cards.first.get_attribute("data-uid")
    cards.first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete series").click()
    expect(page.locator("#kp-messages")).to_have_text("1 series deleted from G.")
    expect(page.locator("#sentinel")).to_have_text("No series match.")
    expect(cards).to_have_count(0)
    g = site.platform.archive.projects.get("G")
    found = site.platform.catalog.search(project_pk=g.id, query=parse_query(None), limit=10)
    assert uid not in {hit.series_instance_uid for hit in found.items} and len(found.items) == 3
