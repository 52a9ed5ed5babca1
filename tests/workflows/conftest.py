"""A shared local Dask cluster (2 worker processes, 1 thread each) and platforms that use it."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from distributed import LocalCluster

from kaapana.config import Settings
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.workflows import ModeValues, Step, Workflow
from tests.helpers import part10
from tests.workflows import operators


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        host="127.0.0.1",
    ) as cluster:
        yield cluster


def probe_workflow(*, retries: int = 0, timeout: float | None = None) -> Workflow:
    return Workflow(
        name="probe",
        version="1",
        parameters=operators.ProbeParameters,
        steps=[
            Step(name="probe", operator=operators.probe, retries=retries, timeout=timeout),
            Step(
                name="gather",
                operator=operators.gather,
                mode=ModeValues.per_run,
                upstream=("probe",),
            ),
        ],
    )


@dataclass
class Site:
    platform: Platform
    project_pk: int
    series: list[str]
    markers: Path

    def executions(self, step: str | None = None) -> list[str]:
        return sorted(
            p.name
            for p in self.markers.iterdir()
            if not p.name.startswith(".") and (step is None or p.name.startswith(f"{step}."))
        )


def store_series(platform: Platform, count: int, *, dataset: str | None = None) -> list[str]:
    target = platform.archive.target("admin", dataset)
    uids = []
    for seed in range(count):
        datasets = ct_series(patient_id=f"WF{seed}", rows=16, columns=16, slices=2, seed=seed)
        for ds in datasets:
            platform.archive.store_bytes(part10(ds), target)
        uids.append(str(datasets[0].SeriesInstanceUID))
    return uids


@pytest.fixture
def make_site(
    make_settings: Callable[..., Settings],
    database_url: str | None,
    dask_cluster: LocalCluster,
    tmp_path: Path,
) -> Iterator[Callable[..., Site]]:
    """A platform on SQLite and PostgreSQL whose engine sends tasks to the shared cluster."""
    opened: list[Platform] = []

    def make(series: int = 3, **overrides: object) -> Site:
        settings = make_settings(
            database_url=database_url,
            dask_scheduler=dask_cluster.scheduler_address,
            retry_backoff_seconds=0.05,
            workflow_entry_points=False,
            **overrides,
        )
        platform = Platform(settings)
        opened.append(platform)
        platform.workflows.registry.add(probe_workflow(retries=1))
        markers = tmp_path / "markers"
        markers.mkdir(exist_ok=True)
        project_pk = platform.archive.projects.get("admin").id
        return Site(platform, project_pk, store_series(platform, series, dataset="cohort"), markers)

    yield make
    for platform in opened:
        platform.close()
