"""OHIF fetched by ``kaapana viewer install-ohif`` from the real npm registry and served at /ohif.

One install per module (about 50 MB from the registry, unpacked into the module's data dir);
failed installs must leave it as it is, and the last test removes it. The browser test runs
OHIF in headless Chromium against uvicorn and watches it talk to the project's DICOMweb with
the login session's cookie; with ``KAAPANA_SCREENSHOTS=<folder>`` it saves ohif.png.
"""

import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import Browser, Locator, Response, expect
from typer.testing import CliRunner, Result

from kaapana.api import create_app
from kaapana.archive.browse import list_studies
from kaapana.auth.projects import scope_of
from kaapana.cli import app as cli_app
from kaapana.config import Settings
from kaapana.ohif.install import DEFAULT_VERSION, OhifInstallError, install
from kaapana.platform import Platform
from kaapana.web.security import CONTENT_SECURITY_POLICY, OHIF_CONTENT_SECURITY_POLICY
from tests.helpers import wait_until
from tests.web import test_browser as shared
from tests.web.conftest import (
    ADMIN_PASSWORD,
    HOSTILE_NAME,
    PASSWORD,
    login,
    populate,
    series_of,
    serving,
)
from tests.web.test_browser import CHROMIUM, log_in, screenshot

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
browser = shared.browser
runner = CliRunner()


def viewer_cli(data_dir: Path, *args: str) -> Result:
    return runner.invoke(cli_app, ["--data-dir", str(data_dir), "viewer", *args])


def current_release(data_dir: Path) -> str:
    return os.readlink(data_dir / "ohif" / "current")


def contrast(canvas: Locator) -> float:
    return float(np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L")).std())


class OhifSite:
    def __init__(self, url: str, app: FastAPI, platform: Platform, data_dir: Path) -> None:
        self.url = url
        self.app = app
        self.platform = platform
        self.data_dir = data_dir

    def study_of(self, project: str) -> str:
        scope = scope_of(self.platform.archive.projects.get(project))
        return list_studies(self.platform.engine, projects=scope).items[0].study_instance_uid

    def client(self, username: str | None = None) -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        if username:
            login(client, username)
        return client


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ohif") / "data"
    result = viewer_cli(folder, "install-ohif")
    assert result.exit_code == 0, result.output
    assert f"OHIF {DEFAULT_VERSION} installed" in result.output
    return folder


@pytest.fixture(scope="module")
def site(data_dir: Path) -> Iterator[OhifSite]:
    settings = Settings(data_dir=data_dir, admin_password=ADMIN_PASSWORD)
    with Platform(settings) as platform:
        populate(platform)
        platform.catalog.reindex()  # the gallery's cards
        app = create_app(settings, platform=platform)
        with TestClient(app), serving(app) as url:
            yield OhifSite(url, app, platform, data_dir)


def test_the_install_holds_the_rewritten_dist(data_dir: Path) -> None:
    dist = data_dir / "ohif" / "current" / "dist"
    assert (dist / "index.html").is_file()
    assert list(dist.glob("app.bundle.*.js")) and list(dist.glob("*.wasm"))
    index = (dist / "index.html").read_text()
    assert re.search(r"<script>", index) is None  # the inline scripts moved into files
    assert '<script src="/ohif/kaapana-inline-0.js"></script>' in index
    assert 'src="/ohif/app-config.js"' in index and 'href="/ohif/manifest.json"' in index
    assert not re.search(r'(?:src|href)="/(?!ohif/)', index)
    assert 'window.PUBLIC_URL="/ohif/"' in (dist / "kaapana-inline-0.js").read_text()
    (bundle,) = dist.glob("app.bundle.*.js")
    assert '__webpack_require__.p = "/ohif/"' in bundle.read_text()  # chunks, workers, wasm
    assert "url(/ohif/" in (dist / "app.bundle.css").read_text()
    status = json.loads(viewer_cli(data_dir, "status", "--json").output)
    assert status["version"] == DEFAULT_VERSION and status["integrity"].startswith("sha512-")


def test_a_bad_version_changes_nothing(data_dir: Path) -> None:
    before = current_release(data_dir)
    missing = viewer_cli(data_dir, "install-ohif", "--version", "0.0.0-no-such-release")
    assert missing.exit_code == 1
    assert "the npm registry has no @ohif/app@0.0.0-no-such-release" in missing.output
    malformed = viewer_cli(data_dir, "install-ohif", "--version", "latest")
    assert malformed.exit_code == 1 and "semantic version" in malformed.output
    unreachable = runner.invoke(
        cli_app,
        ["--data-dir", str(data_dir), "viewer", "install-ohif", "--force"],
        env={"npm_config_registry": "http://127.0.0.1:9/", "npm_config_fetch_retries": "0"},
    )
    assert unreachable.exit_code == 1
    assert "the npm registry could not be reached for @ohif/app@3.13.2" in unreachable.output
    with pytest.raises(OhifInstallError, match=r"npm .* was not found on PATH"):
        install(data_dir / "ohif", force=True, npm="/nonexistent/npm")
    assert current_release(data_dir) == before
    assert sorted(p.name for p in (data_dir / "ohif").iterdir()) == sorted(["current", before])


def served_config(client: TestClient) -> dict:
    """The generated ``window.config``: one JSON value in a script no cache may keep."""
    response = client.get("/ohif/app-config.js")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("text/javascript")
    text = response.text
    assert text.startswith("window.config = ") and text.endswith(";\n")
    return json.loads(text.removeprefix("window.config = ").removesuffix(";\n"))


def test_ohif_is_served_under_its_own_csp_for_signed_in_users(site: OhifSite) -> None:
    anonymous = site.client()
    for path in ("/ohif/", "/ohif/app-config.js", "/ohif/viewer/A?StudyInstanceUIDs=1.2"):
        response = anonymous.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=/ohif/")

    client = site.client("sci_ab")
    index = client.get("/ohif/viewer/A", params={"StudyInstanceUIDs": site.study_of("A")})
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert index.headers["content-security-policy"] == OHIF_CONTENT_SECURITY_POLICY
    assert 'src="/ohif/app-config.js"' in index.text
    wasm = next((site.data_dir / "ohif" / "current" / "dist").glob("*.wasm")).name
    codec = client.get(f"/ohif/{wasm}")
    assert codec.headers["content-type"] == "application/wasm"
    again = client.get(f"/ohif/{wasm}", headers={"If-None-Match": codec.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/ohif/no-such-chunk.js").status_code == 404
    assert client.get("/ohif/..%2F..%2Finstall.json").status_code == 404  # not out of dist
    assert client.get("/ohif/a%00b").status_code == 404
    assert client.get("/ohif/assets/no-such-icon.png").status_code == 404
    assert client.get("/ohif/viewer/A.v2.json").status_code == 200  # a route, not an asset

    body = served_config(client)
    roots = {s["sourceName"]: s["configuration"]["qidoRoot"] for s in body["dataSources"]}
    assert roots == {
        "A": "http://testserver/dicomweb/projects/A",
        "B": "http://testserver/dicomweb/projects/B",
    }
    assert body["defaultDataSourceName"] == "A" and body["routerBasename"] == "/ohif"
    only_a = served_config(site.client("sci_a"))
    assert [s["sourceName"] for s in only_a["dataSources"]] == ["A"]


def test_pages_link_studies_to_ohif(site: OhifSite) -> None:
    client = site.client("sci_a")
    study = site.study_of("A")
    link = f'href="/ohif/viewer/A?StudyInstanceUIDs={study}">Open in OHIF</a>'
    assert link in client.get("/p/A/studies").text
    viewer = client.get(f"/p/A/series/{series_of(site.platform, 'A')[0]}")
    assert link in viewer.text


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (make test does)")
def test_ohif_shows_the_study_list_and_the_gallery_opens_a_study_in_it(
    browser: Browser, site: OhifSite
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=site.url)
    page = context.new_page()
    refused: list[str] = []
    dicomweb: list[Response] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and refused.append(m.text))
    page.on("dialog", lambda d: refused.append(f"a dialog: {d.message}"))
    page.on("response", lambda r: "/dicomweb/" in r.url and dicomweb.append(r))
    try:
        page.goto("/login?next=/ohif/")
        log_in(page, "sci_ab", PASSWORD)
        page.wait_for_url("**/ohif/")
        # the study list of the default source (project A), the hostile name as text
        expect(page.get_by_text(HOSTILE_NAME, exact=True)).to_be_visible(timeout=30_000)
        expect(page.get_by_text("Bravo^Bob")).to_have_count(0)
        queries = [r for r in dicomweb if "/dicomweb/projects/A/studies?" in r.url]
        assert queries and all(r.status == 200 for r in queries)

        page.goto("/p/A/gallery")
        page.locator(".series-card").first.get_by_role("link", name="Open in OHIF").click()
        page.wait_for_url(f"**/ohif/viewer/A?StudyInstanceUIDs={site.study_of('A')}")
        canvas = page.locator("canvas.cornerstone-canvas").first
        expect(canvas).to_be_visible(timeout=30_000)
        page.wait_for_function(
            "() => performance.getEntriesByType('resource')"
            ".some((e) => e.name.includes('/frames/'))",
            timeout=30_000,
        )
        retrieved = [r for r in dicomweb if "/metadata" in r.url or "/frames/" in r.url]
        assert {"/metadata", "/frames/"} <= {
            part for r in retrieved for part in ("/metadata", "/frames/") if part in r.url
        }
        assert all(r.status == 200 for r in dicomweb)
        # the phantom's body, lungs and spine on black: a drawn slice has strong contrast
        wait_until(lambda: contrast(canvas) > 20, what="OHIF to draw the CT slice")
        screenshot(page, "ohif")
        assert refused == []
    finally:
        context.close()


def test_installing_the_same_version_again_changes_nothing(site: OhifSite) -> None:
    before = current_release(site.data_dir)
    again = viewer_cli(site.data_dir, "install-ohif")
    assert again.exit_code == 0 and "already installed" in again.output
    assert current_release(site.data_dir) == before


def test_after_removal_the_pages_say_how_to_install_it(site: OhifSite) -> None:
    removed = viewer_cli(site.data_dir, "remove-ohif")
    assert removed.exit_code == 0 and f"removed OHIF {DEFAULT_VERSION}" in removed.output
    assert list((site.data_dir / "ohif").iterdir()) == []
    assert "not installed" in viewer_cli(site.data_dir, "status").output
    client = site.client("sci_a")
    response = client.get("/ohif/viewer/A")
    assert response.status_code == 404
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "kaapana viewer install-ohif" in response.text
    assert client.get("/ohif/app-config.js").status_code == 404
    assert "Open in OHIF" not in client.get("/p/A/studies").text
