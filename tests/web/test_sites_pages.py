"""The sites page, the home's pending approvals and the federated execution form, through the
real app: who may see them, what a data owner is shown, and hostile peer strings as text."""

import html
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from kaapana.api import create_app
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.web.pages.sites import result_charts
from tests.helpers import wait_until
from tests.web.conftest import ADMIN_PASSWORD, HOSTILE_NAME, login, populate
from tests.web.federation_state import PENDING, WORKFLOW, federate

ESCAPED = html.escape(HOSTILE_NAME, quote=False)


@pytest.fixture
def federated(
    make_settings: Callable[..., Settings], database_url: str | None
) -> Iterator[TestClient]:
    settings = make_settings(
        admin_password=ADMIN_PASSWORD, database_url=database_url, site_name=HOSTILE_NAME
    )
    with Platform(settings) as platform:
        populate(platform)
        federate(platform)
        with TestClient(create_app(settings, platform=platform)) as client:
            yield client


def test_members_see_neither_the_sites_page_nor_the_federated_form(
    federated: TestClient,
) -> None:
    assert federated.get("/sites", follow_redirects=False).headers["location"] == (
        "/login?next=/sites"
    )
    login(federated, "sci_a")
    assert federated.get("/sites").status_code == 403
    home = federated.get("/p/A/").text
    assert 'href="/sites"' not in home
    assert "<strong>2</strong> federated jobs wait for approval; a site administrator" in home
    assert 'name="where"' not in federated.get("/p/A/workflows/federated-statistics").text


def test_an_administrator_sees_what_each_decision_needs(federated: TestClient) -> None:
    login(federated, "admin", ADMIN_PASSWORD)
    page = federated.get("/sites")
    assert page.status_code == 200
    text = page.text
    assert HOSTILE_NAME not in text  # this site's name, the requester, a peer's dataset
    assert text.count(ESCAPED) >= 2 + len(PENDING) * 2
    assert f'<strong id="site-name">{ESCAPED}</strong>' in text
    for peer in ("central", "hospital-b", "hospital-c"):
        assert f'data-peer="{peer}"' in text
    for job in PENDING:
        assert f'data-approve="{job}"' in text and f'data-deny="{job}"' in text
    assert "A/cohort): 1 patients, 1 studies, 2 series" in text
    assert "stats.json" in text and "no pixel data" in text
    assert 'data-policy="federated-statistics"' in text
    assert 'data-exposure="cohort"' in text
    assert 'href="/sites" aria-current="page"' in text

    # Home counts the approvals pending on the project's exposed datasets.
    home_a = federated.get("/p/A/").text
    assert "<strong>2</strong> federated jobs wait for approval" in home_a
    assert '<a href="/sites">decide on the sites page</a>' in home_a
    assert "<strong>2</strong>" in federated.get("/p/admin/").text
    assert "No federated jobs wait for approval." in federated.get("/p/B/").text

    # The form of a federated plan's workflow offers the registered participants.
    form = federated.get("/p/A/workflows/federated-statistics").text
    for site in ("hospital-b", "hospital-c"):
        assert f'name="site" value="{site}" checked' in form
    assert f'<option value="{html.escape(HOSTILE_NAME)}"></option>' in form
    assert HOSTILE_NAME not in form
    assert 'name="where"' not in federated.get("/p/A/workflows/series-metadata").text


def _peer_row(text: str, name: str) -> str:
    found = re.search(rf'data-peer="{name}">.*?</tr>', text, re.S)
    assert found is not None, name
    return found.group(0)


def test_the_orchestrator_side_counts_jobs_and_shows_each_federated_run(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(admin_password=ADMIN_PASSWORD, dask_workers=1)
    with Platform(settings) as platform:
        populate(platform)
        federate(platform)
        runs = platform.federation.runs
        run = runs.start(WORKFLOW, dataset="cohort", actor="admin", sites=["hospital-b"])
        platform.federation.serve()  # the gate of the central run dispatches round 1
        wait_until(lambda: bool(runs.get(run.id).jobs), 30, "round 1 dispatched")
        platform.workflows.close()  # no more rounds dispatched: the pages show this moment
        (job,) = runs.get(run.id).jobs
        training = runs.start(
            "federated-training", dataset="cohort", actor="admin", sites=["hospital-b"]
        )
        artifact = runs.global_artifact(training.id)  # round 0: the seeded network
        assert artifact
        with TestClient(create_app(settings, platform=platform)) as client:
            assert client.get(f"/sites/runs/{run.id}", follow_redirects=False).status_code == 303
            login(client, "sci_a")
            assert client.get(f"/sites/runs/{run.id}").status_code == 403
            assert client.get(f"/api/v1/federation/runs/{run.id}/artifact").status_code == 403
            login(client, "admin", ADMIN_PASSWORD)
            text = client.get("/sites").text
            page = client.get(f"/sites/runs/{run.id}").text
            training_page = client.get(f"/sites/runs/{training.id}").text
            assert client.get("/sites/runs/999").status_code == 404
            root = f"/api/v1/federation/runs/{training.id}/artifact"
            listed = client.get(root).json()
            missing = client.get(f"{root}/nothing.bin")
            downloads = {name: client.get(f"{root}/{name}") for name in artifact}

    peers = {name: _peer_row(text, name) for name in ("central", "hospital-b", "hospital-c")}
    assert ">queued</span> 1" in peers["hospital-b"]
    assert "<td>none</td>" in peers["hospital-c"]
    assert ">pending_approval</span> 2" in peers["central"]
    assert f'data-cancel-run="{run.id}"' in text
    assert "0 of 1" in text and 'hospital-b <span class="muted">(at least 1)' in text
    assert f'<a href="/sites/runs/{run.id}">#{run.id}</a>' in text

    assert f"Federated run #{run.id}: {WORKFLOW}" in page
    assert f'<a href="/p/admin/runs/{run.run_id}">#{run.run_id}</a>' in page
    assert f'<tr data-job="{job.job_id}">' in page and "hospital-b" in page
    assert f'data-request-logs="{job.job_id}"' in page
    assert f'data-cancel-run="{run.id}"' in page
    assert "No round has been aggregated yet." in page
    assert f'href="{root}/model.pt"' in training_page

    assert listed == [{"name": n, "size": len(d)} for n, d in sorted(artifact.items())]
    assert missing.status_code == 404 and "nothing.bin" in missing.json()["detail"]
    for name, answer in downloads.items():
        assert answer.content == artifact[name]
        assert answer.headers["content-disposition"].startswith("attachment;")


def test_a_training_result_is_drawn_as_curves_over_rounds() -> None:
    rounds = [
        {"round": r, "cases": {"a": 3}, "local_loss": loss, "local_validation_dice": {"lung": d}}
        for r, loss, d in ((1, 0.9, 0.2), (2, 0.5, 0.7), (3, 0.3, 0.8))
    ]
    charts = result_charts({"model_bytes": 10, "rounds": rounds})
    assert len(charts) == 2
    dice, loss = (str(c) for c in charts)
    assert "Validation Dice" in dice and "lung" in dice and dice.count("<polyline") == 1
    assert "loss" in loss and loss.startswith("<svg")
    assert result_charts({"modality": {"CT": 4}}) == []
    assert result_charts(None) == []
