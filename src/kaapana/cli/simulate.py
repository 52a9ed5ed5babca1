"""``kaapana federation simulate``: a federated run between virtual sites in one process.

The local dataset is split by patient (round robin over the sorted patient IDs) into virtual
sites, each a complete installation in its own folder with its own database, archive and
workflow engine; an orchestrator serves the real protocol over HTTP on loopback, and every
site's poller talks to it exactly as a hospital's would (enrolment secrets, sealed uploads,
output checks, audit). Method developers see what a real study would return, before one.
"""

import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from kaapana.api import create_app
from kaapana.config import Settings
from kaapana.errors import InvalidInput
from kaapana.federation.states import ApprovalValues, FederatedRunStateValues
from kaapana.platform import Platform

SIMULATION_POLL_SECONDS = 0.5
_EXPOSED = "simulation"


def split_by_patient(members: list[tuple[str, str]], sites: int) -> list[list[str]]:
    """Series UIDs per site from (patient ID, series UID) pairs: every patient at one site."""
    patients = sorted({patient for patient, _ in members})
    if len(patients) < sites:
        raise InvalidInput(
            f"the dataset has {len(patients)} patients; {sites} sites need at least {sites}"
        )
    site_of = {patient: index % sites for index, patient in enumerate(patients)}
    groups: list[list[str]] = [[] for _ in range(sites)]
    for patient, uid in members:
        groups[site_of[patient]].append(uid)
    return groups


@contextmanager
def serve_http(platform: Platform) -> Iterator[str]:
    """The platform's HTTP app on a free loopback port (its base URL), for virtual sites."""
    config = uvicorn.Config(
        create_app(platform.settings, platform=platform),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="simulation-http", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the simulated orchestrator did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def site_settings(
    base: Settings, folder: Path, name: str, *, poll_seconds: float = SIMULATION_POLL_SECONDS
) -> Settings:
    """A virtual site: its own folder, one Dask worker, the workflows the base installation
    knows."""
    return Settings(
        data_dir=folder,
        site_name=name,
        admin_password=secrets.token_urlsafe(16),
        dask_workers=1,
        federation_poll_seconds=poll_seconds,
        workflow_entry_points=base.workflow_entry_points,
        plugins_dir=base.resolved_plugins_dir,
    )


def simulate(
    settings: Settings,
    *,
    workflow: str,
    dataset: str,
    project: str = "admin",
    sites: int = 3,
    rounds: int | None = None,
    work_dir: Path | None = None,
    timeout: float = 3600.0,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``workflow`` over virtual sites made of ``project``'s ``dataset``; its result."""
    with ExitStack() as stack:
        root = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        source = stack.enter_context(Platform(settings))
        plan = source.federation.plans.get(workflow)
        found = source.archive.projects.get(project)
        members = [
            (m.patient_id, m.series_instance_uid)
            for m in source.datasets.members(found, dataset, limit=1_000_000).items
        ]
        groups = split_by_patient(members, sites)
        orchestrator = stack.enter_context(
            Platform(site_settings(settings, root / "orchestrator", "orchestrator"))
        )
        url = stack.enter_context(serve_http(orchestrator))
        names = []
        for index, uids in enumerate(groups, start=1):
            name = f"site-{index}"
            names.append(name)
            secret = orchestrator.federation.sites.add_participant(name).secret
            site = stack.enter_context(Platform(site_settings(settings, root / name, name)))
            target = site.archive.target("admin", _EXPOSED)
            paths = source.archive.local_paths(study_instance_uids=[], series_instance_uids=uids)
            for path in paths:
                site.archive.store_bytes(path.read_bytes(), target, source="simulation")
            site.archive.flush()
            site.federation.policies.expose(project="admin", dataset=_EXPOSED)
            site.federation.policies.allow(
                plan.workflow, approval=ApprovalValues.automatic, actor="simulation"
            )
            site.federation.sites.add_orchestrator("orchestrator", url=url, secret=secret)
            site.workflows.start()
            site.federation.serve()
        orchestrator.federation.serve()
        run = orchestrator.federation.runs.start(
            workflow,
            dataset=_EXPOSED,
            actor="simulation",
            sites=names,
            rounds=rounds,
            params=params,
        )
        deadline = time.monotonic() + timeout
        while run.state == FederatedRunStateValues.running and time.monotonic() < deadline:
            time.sleep(0.2)
            run = orchestrator.federation.runs.get(run.id)
        received: dict[int, int] = {}
        for job in run.jobs:
            received[job.round] = received.get(job.round, 0) + job.received_bytes
        return {
            "workflow": workflow,
            "run": run.id,
            "state": run.state,
            "error": run.error,
            "rounds": run.finished_rounds,
            "sites": {name: len(uids) for name, uids in zip(names, groups, strict=True)},
            "history": run.history,
            "received_bytes_per_round": [received[r] for r in sorted(received)],
            "result": run.result,
        }


__all__ = ["serve_http", "simulate", "site_settings", "split_by_patient"]
