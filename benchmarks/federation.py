"""Federation: orchestration overhead per round, three sites, 1 s poll interval.

An orchestrator serving the real protocol over HTTP on loopback and three virtual participant
sites in this process (each with its own folder, database, workflow engine with one Dask
worker, and poller at ``federation_poll_seconds=1``), as ``kaapana federation simulate`` builds
them. The federated workflow is trivial: each site's local workflow writes the number of its
series into ``count.json`` (one per-run task), the aggregator adds them up. A warm-up run starts
the Dask clusters first, as running servers would have them.

Per round: the wall time at the orchestrator (from the round's dispatch to the next round's, or
to the run's end), the slowest site's local run (its workflow run from start to end), and the
overhead: wall minus the slowest local run, i.e. what delivery, approval, start, upload,
checking, aggregation and the next dispatch add. Also the bytes received per round (sealed
uploads) against the plain outputs.

Then federated-training through ``kaapana federation simulate``'s machinery (three virtual
sites from nine tiny synthetic CT + lung SEG cases, network channels [4, 8, 16]): the bytes
received per round against the model size, whose floor is sites times the model (``--no-training``
leaves it out).

Usage: ``python benchmarks/federation.py [--rounds N] [--out FILE]``; JSON to stdout.
"""

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _common import Report, add_output_arguments, tool_versions
from kaapana.cli.simulate import serve_http, simulate, site_settings
from kaapana.config import Settings
from kaapana.federation.aggregation import FederatedPlan, Files
from kaapana.federation.states import ApprovalValues
from kaapana.platform import Platform
from kaapana.testing import ct_series
from kaapana.testing.synthetic import ct_segmentation
from kaapana.workflows import ModeValues, Step, TaskContext, Workflow

SITES = 3
POLL_SECONDS = 1.0
TARGET_OVERHEAD_S = 2.0


def count_series(ctx: TaskContext) -> None:
    target = ctx.output_dir / "count.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"series": len(ctx.series)}))
    ctx.add_artifact(target)


COUNT_WORKFLOW = Workflow(
    name="federated-count",
    version="1",
    federated_outputs=("count.json",),
    steps=[Step(name="count", operator=count_series, mode=ModeValues.per_run)],
)


class CountSum:
    def initial(self, params: Mapping[str, Any]) -> Files:
        return {}

    def aggregate(
        self, *, round: int, params: Mapping[str, Any], current: Files, outputs: Mapping[str, Files]
    ) -> Files:
        total = sum(json.loads(files["count.json"])["series"] for files in outputs.values())
        return {"count.json": json.dumps({"round": round, "series": total}).encode()}

    def summary(self, current: Files) -> dict[str, Any]:
        return json.loads(current["count.json"]) if current else {}

    def broadcast(self, current: Files) -> Files:
        return current  # the running total goes out, as a model would


def _run(orchestrator: Platform, rounds: int) -> Any:
    runs = orchestrator.federation.runs
    run = runs.start(COUNT_WORKFLOW.name, dataset="bench", actor="bench", rounds=rounds)
    while run.state == "running":
        time.sleep(0.05)
        run = runs.get(run.id)
    if run.state != "succeeded":
        raise RuntimeError(f"federated run {run.id} ended {run.state}: {run.error}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds measured (default 5)")
    parser.add_argument(
        "--no-training", action="store_true", help="skip the federated-training case"
    )
    add_output_arguments(parser)
    args = parser.parse_args()
    report = Report(benchmark="federation", environment=tool_versions())
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base = Settings(data_dir=root / "base")
        orchestrator = stack.enter_context(
            Platform(
                site_settings(
                    base, root / "orchestrator", "orchestrator", poll_seconds=POLL_SECONDS
                )
            )
        )
        orchestrator.workflows.registry.add(COUNT_WORKFLOW, source="benchmark")
        orchestrator.federation.plans.add(
            FederatedPlan(
                name=COUNT_WORKFLOW.name, workflow=COUNT_WORKFLOW.name, aggregator=CountSum()
            )
        )
        url = stack.enter_context(serve_http(orchestrator))
        sites = []
        for index in range(1, SITES + 1):
            name = f"site-{index}"
            secret = orchestrator.federation.sites.add_participant(name).secret
            site = stack.enter_context(
                Platform(site_settings(base, root / name, name, poll_seconds=POLL_SECONDS))
            )
            site.workflows.registry.add(COUNT_WORKFLOW, source="benchmark")
            target = site.archive.target("admin", "bench")
            for ds in ct_series(rows=16, columns=16, slices=2, patient_id=f"B{index}", seed=index):
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                site.archive.store_bytes(buffer.getvalue(), target, source="bench")
            site.archive.flush()
            site.federation.policies.expose(project="admin", dataset="bench")
            site.federation.policies.allow(
                COUNT_WORKFLOW.name, approval=ApprovalValues.automatic, actor="bench"
            )
            site.federation.sites.add_orchestrator("orchestrator", url=url, secret=secret)
            site.workflows.start()
            site.federation.serve()
            sites.append(site)
        orchestrator.federation.serve()
        print("warm-up run (starts the sites' Dask clusters)", file=sys.stderr)
        _run(orchestrator, 1)
        print(f"measuring {args.rounds} rounds", file=sys.stderr)
        started = time.perf_counter()
        run = _run(orchestrator, args.rounds)
        wall = time.perf_counter() - started
        local = _local_durations(sites)
        marks = [
            min(j.created_at for j in run.jobs if j.round == number)
            for number in range(1, args.rounds + 1)
        ] + [run.finished_at]
        cases = []
        for number in range(1, args.rounds + 1):
            round_wall = (marks[number] - marks[number - 1]).total_seconds()
            jobs = [j for j in run.jobs if j.round == number]
            slowest = max(local[j.job_id] for j in jobs)
            cases.append(
                {
                    "round": number,
                    "wall_s": round_wall,
                    "slowest_local_run_s": slowest,
                    "overhead_s": round_wall - slowest,
                    "received_bytes": sum(j.received_bytes for j in jobs),
                }
            )
    overheads = [c["overhead_s"] for c in cases]
    report.cases.append(
        {
            "case": "rounds",
            "sites": SITES,
            "poll_seconds": POLL_SECONDS,
            "rounds": args.rounds,
            "run_wall_s": round(wall, 2),
            "round_wall_s_median": round(statistics.median(c["wall_s"] for c in cases), 3),
            "slowest_local_run_s_median": round(
                statistics.median(c["slowest_local_run_s"] for c in cases), 3
            ),
            "overhead_s_median": round(statistics.median(overheads), 3),
            "overhead_s_max": round(max(overheads), 3),
            "target_overhead_s": TARGET_OVERHEAD_S,
            "met": statistics.median(overheads) <= TARGET_OVERHEAD_S,
            "received_bytes_per_round": cases[0]["received_bytes"],
            "plain_output_bytes_per_round": SITES * len(json.dumps({"series": 2})),
            "per_round": [
                {
                    key: round(value, 3) if isinstance(value, float) else value
                    for key, value in case.items()
                }
                for case in cases
            ],
        }
    )
    if not args.no_training:
        report.cases.append(_training_bytes())
    report.emit(args.out)


TRAINING = {
    "model_name": "benchmark-lungs",
    "epochs": 1,
    "channels": [4, 8, 16],
    "num_res_units": 1,
    "patch_size": [16, 32, 32],
    "validation_fraction": 0.3,
    "threads": 1,
    "device": "cpu",
}


def _training_bytes(rounds: int = 2) -> dict[str, Any]:
    """Bytes per round for training vs model size."""
    print(f"federated-training, {rounds} rounds", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder) / "source")
        with Platform(settings) as source:
            target = source.archive.target("admin", "lungs")
            for seed in range(9):
                ct = ct_series(patient_id=f"T{seed}", rows=32, columns=32, slices=16, seed=seed)
                for ds in [*ct, ct_segmentation(ct, seed=seed, labels=("lungs",))]:
                    buffer = io.BytesIO()
                    ds.save_as(buffer, enforce_file_format=True)
                    source.archive.store_bytes(buffer.getvalue(), target, source="bench")
            source.archive.flush()
        result = simulate(
            settings,
            workflow="federated-training",
            dataset="lungs",
            sites=SITES,
            rounds=rounds,
            work_dir=Path(folder) / "sites",
            params=TRAINING,
        )
    if result["state"] != "succeeded":
        raise RuntimeError(f"federated-training ended {result['state']}: {result['error']}")
    model = result["result"]["model_bytes"]
    received = result["received_bytes_per_round"]
    return {
        "case": "bytes per round for training vs model size",
        "sites": SITES,
        "rounds": rounds,
        "model_bytes": model,
        "floor_bytes_per_round": SITES * model,
        "received_bytes_per_round": received,
        "ratio_to_floor": [round(value / (SITES * model), 3) for value in received],
    }


def _local_durations(sites: list[Platform]) -> dict[str, float]:
    """Each job's local workflow run, start to end, by job id."""
    durations = {}
    for site in sites:
        for job in site.federation.jobs.list(limit=1000):
            if job.run_id is None:
                continue
            run = site.workflows.get_run(job.run_id)
            if run.started_at and run.finished_at:
                durations[job.job_id] = (run.finished_at - run.started_at).total_seconds()
    return durations


if __name__ == "__main__":
    main()
