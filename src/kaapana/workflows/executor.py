"""Dask as the executor: a local cluster of worker processes, or an existing cluster.

The cluster is started lazily, on the first task, so an installation without runs starts no
processes. With ``dask_scheduler`` set, tasks go to that cluster (started on Kubernetes with
dask-kubernetes, on SLURM/PBS with dask-jobqueue, or by hand with ``dask scheduler`` and
``dask worker``); its workers need kaapana installed and the shared work folder mounted.
"""

import logging
import os
import threading
from collections.abc import Callable

import dask
from distributed import Client, Future, LocalCluster

from kaapana.config import Settings
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import Step
from kaapana.workflows.execution import run_attempt, write_attempt

log = logging.getLogger(__name__)

Done = Callable[[Future], None]

_LOCAL_CLUSTER_CONFIG = {
    # Dask's sampling profiler (every 10 ms in every worker) serves its dashboard, which a
    # local cluster does not show; it costs each task about a millisecond.
    "distributed.worker.profile.enabled": False,
}


class DaskExecutor:
    """Submits task attempts; knows nothing about states, which the scheduler owns."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._lock = threading.Lock()

    def client(self) -> Client:
        with self._lock:
            if self._client is None:
                address = self._settings.dask_scheduler
                if address:
                    log.info("workflow tasks go to the Dask scheduler at %s", address)
                    self._client = Client(address, timeout=30, set_as_default=False)
                else:
                    workers = self._settings.dask_workers or os.cpu_count() or 1
                    with dask.config.set(_LOCAL_CLUSTER_CONFIG):
                        self._cluster = LocalCluster(
                            n_workers=workers,
                            threads_per_worker=1,
                            processes=True,
                            # The scheduler's HTTP server (health, metrics) always starts; on a
                            # port of its own, never Dask's 8787 that another cluster may hold.
                            dashboard_address=":0",
                            host="127.0.0.1",
                        )
                    log.info("started a local Dask cluster of %d worker processes", workers)
                    self._client = Client(self._cluster, set_as_default=False)
            return self._client

    def submit_all(self, attempts: list[tuple[TaskContext, Step, Done]]) -> list[Future]:
        """Submits attempts in one call (one graph update for Dask however many there are);
        each ``Done`` is called with its future when that attempt has ended."""
        if not attempts:
            return []
        keys = [
            f"kaapana-run{ctx.run_id}-task{ctx.task_id}-attempt{ctx.attempt}"
            for ctx, _step, _done in attempts
        ]
        futures: list[Future] = self.client().map(
            run_attempt,
            [str(write_attempt(ctx, step)) for ctx, step, _done in attempts],
            key=keys,
            pure=False,
            retries=0,
        )
        for future, (_ctx, _step, done) in zip(futures, attempts, strict=True):
            future.add_done_callback(done)
        return futures

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None


__all__ = ["DaskExecutor"]
