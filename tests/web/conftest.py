"""An archive with two projects of different studies (one with a hostile PatientName) and users."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kaapana.api import create_app
from kaapana.archive.browse import list_series, list_studies
from kaapana.auth.projects import scope_of
from kaapana.auth.roles import RoleValues
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series, mr_series
from tests.helpers import free_port, part10, wait_until

ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "a-good-password"
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_DESCRIPTION = "<script>alert(2)</script>"


def populate(platform: Platform) -> None:
    """Project A: a CT+MR study of patient PA with a hostile name; project B: a CT of PB."""
    projects = platform.archive.projects
    a = projects.create("A", ae_title="PROJ_A", description="Lung study")
    b = projects.create("B", ae_title="PROJ_B")
    users = platform.auth.users
    for name, project, role in (
        ("sci_a", a, RoleValues.scientist),
        ("sci_b", b, RoleValues.scientist),
        ("sci_ab", a, RoleValues.scientist),
        ("sci_ab", b, RoleValues.principal_investigator),
    ):
        if users.find(name) is None:
            users.create(name, password=PASSWORD)
        users.set_role(name, project, role)
    study_a = ct_series(
        patient_id="PA",
        patient_name=HOSTILE_NAME,
        rows=16,
        columns=16,
        slices=2,
        seed=1,
        series_description=HOSTILE_DESCRIPTION,
    )
    study_a += mr_series(
        patient_id="PA",
        patient_name=HOSTILE_NAME,
        study_instance_uid=study_a[0].StudyInstanceUID,
        rows=16,
        columns=16,
        slices=2,
        seed=1,
    )
    study_b = ct_series(
        patient_id="PB", patient_name="Bravo^Bob", rows=16, columns=16, slices=3, seed=2
    )
    for datasets, project in ((study_a, "A"), (study_b, "B")):
        target = platform.archive.target(project)
        for ds in datasets:
            platform.archive.store_bytes(part10(ds), target)


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Log the client in; returns the CSRF header its state-changing requests need."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


@pytest.fixture
def web(make_settings: Callable[..., Settings], database_url: str | None) -> Iterator[TestClient]:
    """The app in-process over the populated archive, on SQLite and PostgreSQL."""
    settings = make_settings(admin_password=ADMIN_PASSWORD, database_url=database_url)
    with Platform(settings) as platform:
        populate(platform)
        with TestClient(create_app(settings, platform=platform)) as client:
            yield client


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` behind a real uvicorn server on a free port, for a real browser."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the HTTP server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def series_of(platform: Platform, project: str) -> list[str]:
    """The Series Instance UIDs the project sees, study by study."""
    scope = scope_of(platform.archive.projects.get(project))
    return [
        series.series_instance_uid
        for study in list_studies(platform.engine, projects=scope).items
        for series in list_series(
            platform.engine, study_instance_uid=study.study_instance_uid, projects=scope
        ).items
    ]
