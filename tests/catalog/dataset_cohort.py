"""Fixtures of the dataset tests: a project archive of synthetic patients (CT, SEG, MR),
ingested for real, on both engines, and the REST application over it."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from pydicom import Dataset
from sqlalchemy import select

from kaapana.api import create_app
from kaapana.auth.roles import RoleValues
from kaapana.db.engine import session_factory
from kaapana.db.models import Instance, Project, Series
from kaapana.platform import Platform
from kaapana.testing import demo_cohort
from tests.api.conftest import Site
from tests.helpers import part10


@dataclass
class DatasetCohort:
    platform: Platform
    a: Project
    b: Project
    objects: list[Dataset]  # everything stored in A
    shared: str  # a series stored in A and in B

    def series_uids(self, modality: str | None = None) -> list[str]:
        """SeriesInstanceUIDs as ingested, in arrival order."""
        seen = {
            ds.SeriesInstanceUID: ds.Modality
            for ds in self.objects
            if modality is None or ds.Modality == modality
        }
        return list(seen)

    def storage_keys(self, series_instance_uid: str) -> list[str]:
        with session_factory(self.platform.engine)() as session:
            return list(
                session.scalars(
                    select(Instance.storage_key)
                    .join(Series, Instance.series_pk == Series.id)
                    .where(Series.series_instance_uid == series_instance_uid)
                )
            )


@pytest.fixture
def dataset_cohort(platform: Platform) -> DatasetCohort:
    projects = platform.archive.projects
    a, b = projects.create("A", ae_title="PROJ_A"), projects.create("B", ae_title="PROJ_B")
    objects = list(demo_cohort(patients=3, rows=16, columns=16, slices=2, seed=7))
    into_a, into_b = platform.archive.target("A"), platform.archive.target("B")
    shared = objects[0].SeriesInstanceUID
    for ds in objects:
        data = part10(ds)
        platform.archive.store_bytes(data, into_a)
        if ds.SeriesInstanceUID == shared:
            platform.archive.store_bytes(data, into_b)
    return DatasetCohort(platform, a, b, objects, shared)


@pytest.fixture
def cohort_site(dataset_cohort: DatasetCohort) -> Iterator[Site]:
    """The REST application over the dataset cohort: a scientist and a PI of A, a scientist of B."""
    users = dataset_cohort.platform.auth.users
    for name, project, role in (
        ("sci_a", dataset_cohort.a, RoleValues.scientist),
        ("pi_a", dataset_cohort.a, RoleValues.principal_investigator),
        ("sci_b", dataset_cohort.b, RoleValues.scientist),
    ):
        users.create(name, password=None)  # callers use API tokens
        users.set_role(name, project, role)
    app = create_app(dataset_cohort.platform.settings, platform=dataset_cohort.platform)
    with TestClient(app) as client:
        yield Site(dataset_cohort.platform, client, dataset_cohort.objects, [])
