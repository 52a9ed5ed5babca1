"""The central workflow of a federated plan: one gated task that aggregates each round.

Every federated run at the orchestrator is also a run of its plan's central workflow
(``<plan>.rounds``) on the workflow engine. Its one step waits at the ``federated-round`` gate
(``kaapana.federation.runs``), which dispatches the round's jobs and lets the task run once the
round has ended with enough sites; the task then runs on a Dask worker like any other: it reads
the round, the current global artifact and each site's outputs from its ``gate-input`` folder
(workers never open the database), writes the next global artifact as its output and asks the
platform to commit the round (``federation.commit-round``). Its log, one per round, says which
sites were aggregated into what.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from kaapana.auth.roles import PermissionValues
from kaapana.federation.aggregation import Aggregator, Files
from kaapana.workflows.context import TaskContext
from kaapana.workflows.definitions import ModeValues, Step, Workflow

ROUND_GATE: Final = "federated-round"
COMMIT_ACTION: Final = "federation.commit-round"
STEP_NAME: Final = "aggregate"
ROUND_FILE: Final = "round.json"
"""In the gate input: the federated run, the round and the run's parameters."""
CURRENT_DIR: Final = "current"
"""In the gate input: the files of the current global artifact."""
SITES_DIR: Final = "sites"
"""In the gate input: ``<site>/<file>``, the outputs of each site that delivered."""
GLOBAL_DIR: Final = "global"
"""In the task's output folder: the next global artifact."""


class CentralParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    federated_run: int = Field(ge=1, description="The federated run whose rounds this drives.")


def central_name(plan: str) -> str:
    return f"{plan}.rounds"


def central_workflow(plan: str, aggregator: Aggregator) -> Workflow:
    return Workflow(
        name=central_name(plan),
        version="1",
        description=f"The rounds of federated runs of {plan!r} at the orchestrator: each round "
        "dispatched to the sites, then aggregated here.",
        parameters=CentralParameters,
        needs_series=False,
        permission=PermissionValues.manage,
        steps=[
            Step(
                name=STEP_NAME,
                operator=_aggregation(aggregator),
                mode=ModeValues.per_run,
                gate=ROUND_GATE,
                artifacts=(f"{GLOBAL_DIR}/*",),
            )
        ],
    )


def _aggregation(aggregator: Aggregator) -> Callable[[TaskContext], None]:
    def aggregate_round(ctx: TaskContext) -> None:
        document = json.loads((ctx.gate_dir / ROUND_FILE).read_text())
        run, round = document["federated_run"], document["round"]
        sites = ctx.gate_dir / SITES_DIR
        outputs = {folder.name: read_files(folder) for folder in sorted(sites.iterdir())}
        print(f"federated run {run}, round {round}: aggregating {', '.join(outputs)}", flush=True)
        following = aggregator.aggregate(
            round=round,
            params=document["params"],
            current=read_files(ctx.gate_dir / CURRENT_DIR),
            outputs=outputs,
        )
        target = ctx.output_dir / GLOBAL_DIR
        target.mkdir(parents=True, exist_ok=True)
        for name, data in sorted(following.items()):
            (target / name).write_bytes(data)
            print(f"global artifact: {name} ({len(data)} bytes)", flush=True)
        ctx.request(COMMIT_ACTION, federated_run=run, round=round)

    return aggregate_round


def read_files(folder: Path) -> Files:
    """The files of a folder, by name (none if it is absent)."""
    if not folder.is_dir():
        return {}
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def gate_input(
    *, run_pk: int, round: int, params: dict[str, object], current: Files, outputs: dict[str, Files]
) -> dict[str, bytes]:
    """The files the gate hands the round's aggregation."""
    files = {
        ROUND_FILE: json.dumps({"federated_run": run_pk, "round": round, "params": params}).encode()
    }
    files.update({f"{CURRENT_DIR}/{name}": data for name, data in current.items()})
    for site, delivered in outputs.items():
        files.update({f"{SITES_DIR}/{site}/{name}": data for name, data in delivered.items()})
    return files


__all__ = [
    "COMMIT_ACTION",
    "ROUND_GATE",
    "STEP_NAME",
    "CentralParameters",
    "central_name",
    "central_workflow",
    "gate_input",
    "read_files",
]
