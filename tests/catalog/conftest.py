"""Fixtures of the catalog tests: a small cataloged archive in two projects (its synthetic data
kept for brute force), the dataset cohorts and the REST site of the API tests."""

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date

import pytest
from distributed import LocalCluster
from pydicom import Dataset

from kaapana.catalog import parse_query
from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series, demo_cohort
from tests.api.conftest import site
from tests.catalog.dataset_cohort import cohort_site, dataset_cohort
from tests.conftest import postgres_schema
from tests.helpers import part10

HOSTILE_DESCRIPTION = "50%_off 'x'; DROP TABLE series;--"


@pytest.fixture(scope="session")
def series_media_cluster() -> Iterator[LocalCluster]:
    """One Dask cluster for the service runs (thumbnails, validation) of every catalog test; a
    local cluster per platform would cost seconds per test."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1"
    ) as cluster:
        yield cluster


@pytest.fixture
def make_settings(
    make_settings: Callable[..., Settings], series_media_cluster: LocalCluster
) -> Callable[..., Settings]:
    """The settings of ``tests/conftest.py``, with workflow tasks on the shared cluster."""

    def make(**overrides: object) -> Settings:
        overrides.setdefault("dask_scheduler", series_media_cluster.scheduler_address)
        return make_settings(**overrides)

    return make


@functools.cache
def _project_a() -> tuple[Dataset, ...]:
    """The demo cohort (CT with SEG, MR), a thin-slice CT with a hostile description, and a
    CT localizer of a six-month-old."""
    datasets = list(demo_cohort(patients=3, rows=16, columns=16, slices=2))
    thin = ct_series(
        patient_id="KP-THIN",
        patient_name="Thin^Slice",
        study_date=date(2023, 6, 1),
        rows=16,
        columns=16,
        slices=2,
        slice_thickness=1.0,
        seed=5,
        series_description=HOSTILE_DESCRIPTION,
    )
    scout = ct_series(
        patient_id="KP-BABY",
        patient_name="Baby^Scout",
        patient_birth_date=date(2023, 1, 1),
        study_date=date(2023, 7, 1),
        rows=16,
        columns=16,
        slices=1,
        seed=6,
        series_description="Scout",
    )
    for ds in scout:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.PatientAge = "006M"
    return tuple(datasets + thin + scout)


@functools.cache
def _project_b() -> tuple[Dataset, ...]:
    return tuple(ct_series(patient_id="PB", rows=16, columns=16, slices=2, seed=9))


@dataclass
class Cohort:
    platform: Platform
    project_pk: int
    other_project_pk: int
    series: dict[str, Dataset]  # SeriesInstanceUID -> first instance, project A
    other_series: dict[str, Dataset]

    def uids(self, query: object, *, limit: int = 1000) -> set[str]:
        page = self.platform.catalog.search(
            project_pk=self.project_pk, query=parse_query(query), limit=limit
        )
        assert page.next_cursor is None
        return {hit.series_instance_uid for hit in page.items}

    def where(self, predicate: object) -> set[str]:
        """Brute force: the project's series whose first instance satisfies ``predicate``."""
        assert callable(predicate)
        return {uid for uid, ds in self.series.items() if predicate(ds)}


def _first_instances(datasets: tuple[Dataset, ...]) -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    for ds in datasets:
        found.setdefault(ds.SeriesInstanceUID, ds)
    return found


def store(platform: Platform, datasets: tuple[Dataset, ...], project: str) -> None:
    target = platform.archive.target(project)
    for ds in datasets:
        platform.archive.store_bytes(part10(ds), target)


def _build_cohort(platform: Platform) -> Cohort:
    a = platform.archive.projects.create("A")
    b = platform.archive.projects.create("B")
    store(platform, _project_a(), "A")
    store(platform, _project_b(), "B")
    platform.catalog.reindex()
    return Cohort(
        platform, a.id, b.id, _first_instances(_project_a()), _first_instances(_project_b())
    )


@pytest.fixture
def cohort(platform: Platform) -> Cohort:
    return _build_cohort(platform)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared_cohort(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cohort]:
    """The cohort once per module and engine, for tests that only read it."""
    with ExitStack() as stack:
        url = stack.enter_context(postgres_schema()) if request.param == "postgres" else None
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("cohort") / "data",
            database_url=url,
            series_quiet_seconds=0.5,
        )
        yield _build_cohort(stack.enter_context(Platform(settings)))


__all__ = ["cohort", "cohort_site", "dataset_cohort", "shared_cohort", "site"]
