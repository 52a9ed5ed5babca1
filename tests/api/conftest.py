"""A running application over a small two-project archive, with users of every role."""

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from dicomweb_client.api import DICOMwebClient
from fastapi.testclient import TestClient
from pydicom import Dataset

from kaapana.api import create_app
from kaapana.asgi import ZeroCopyHttpToolsProtocol
from kaapana.auth.roles import RoleValues
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series, mr_series
from tests.helpers import free_port, part10, wait_until

ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "a-good-password"


@dataclass
class Site:
    platform: Platform
    client: TestClient
    study_a: list[Dataset]
    study_b: list[Dataset]
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        """Bearer headers for a user of the fixture ("anonymous": none)."""
        if who == "anonymous":
            return {}
        if who not in self.tokens:
            user = self.platform.auth.users.get(who)
            issued = self.platform.auth.tokens.issue(user, name="test", can_write=True)
            self.tokens[who] = issued.secret
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str = "admin", **kwargs: Any) -> Any:
        return self.client.get(
            path, headers={**self.headers(who), **kwargs.pop("headers", {})}, **kwargs
        )


def _store(platform: Platform, datasets: list[Dataset], project: str) -> None:
    target = platform.archive.target(project)
    for ds in datasets:
        platform.archive.store_bytes(part10(ds), target)


@pytest.fixture
def site(make_settings: Callable[..., Settings], database_url: str | None) -> Iterator[Site]:
    """On SQLite and, where it is reachable, on PostgreSQL."""
    settings = make_settings(admin_password=ADMIN_PASSWORD, database_url=database_url)
    with Platform(settings) as platform:
        projects = platform.archive.projects
        a = projects.create("A", ae_title="PROJ_A")
        b = projects.create("B", ae_title="PROJ_B")
        users = platform.auth.users
        for name, project, role in (
            ("sci_a", a, RoleValues.scientist),
            ("pi_a", a, RoleValues.principal_investigator),
            ("sci_b", b, RoleValues.scientist),
        ):
            users.create(name, password=PASSWORD)
            users.set_role(name, project, role)
        study_a = ct_series(patient_id="PA", rows=32, columns=32, slices=4, seed=1)
        study_a += mr_series(
            patient_id="PA",
            study_instance_uid=study_a[0].StudyInstanceUID,
            rows=32,
            columns=32,
            slices=2,
            seed=1,
        )
        study_b = ct_series(patient_id="PB", rows=32, columns=32, slices=3, seed=2)
        _store(platform, study_a, "A")
        _store(platform, study_b, "B")
        with TestClient(create_app(settings, platform=platform)) as client:
            yield Site(platform, client, study_a, study_b)


@dataclass
class Live:
    """The site's application behind a real HTTP server, for clients that open sockets."""

    site: Site
    url: str

    def client(self, who: str = "admin", root: str = "/dicomweb") -> DICOMwebClient:
        return DICOMwebClient(self.url + root, headers=self.site.headers(who))


@pytest.fixture
def live(site: Site) -> Iterator[Live]:
    port = free_port()
    config = uvicorn.Config(
        site.client.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http=ZeroCopyHttpToolsProtocol,  # as `kaapana serve` runs it
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the HTTP server to start")
    try:
        yield Live(site, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)
