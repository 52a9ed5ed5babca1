"""Federated plans: a local workflow every site runs, and an aggregator at the orchestrator.

A round sends each site the current global artifact (a set of named files, possibly empty),
each site runs the plan's local workflow and uploads the workflow's declared federated outputs,
and the aggregator turns the outputs of the sites that delivered into the next global artifact.
Statistics pooling is one aggregator; FedAvg (sample-weighted) or FedProx is another one over
model weights, with a local training workflow that reads the global model from its
``federated_input`` parameter and declares its weights and sample count as federated outputs.
"""

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from kaapana.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from kaapana.workflows.registry import Registry

Files = dict[str, bytes]


class Aggregator(Protocol):
    """Turns the sites' outputs of one round into the next global artifact."""

    def initial(self, params: Mapping[str, Any]) -> Files:
        """The global artifact sent in round 1 (empty: none)."""
        ...

    def aggregate(
        self,
        *,
        round: int,
        params: Mapping[str, Any],
        current: Files,
        outputs: Mapping[str, Files],
    ) -> Files:
        """The next global artifact from the outputs of each site (by site name)."""
        ...

    def summary(self, current: Files) -> dict[str, Any]:
        """The JSON shown as the federated run's result."""
        ...

    def broadcast(self, current: Files) -> Files:
        """What the sites of the next round receive of the global artifact (a model, say);
        empty: nothing. Keeps what one site delivered from reaching the others."""
        ...


@dataclass(frozen=True, slots=True)
class SummaryPooling:
    """An aggregator of one JSON summary per site (statistics, radiomics): each round's global
    artifact is that file with the pooled summary and every site's own; nothing is broadcast,
    so no site sees another's figures."""

    name: str
    """The file each site delivers and the global artifact holds."""
    pool: Callable[[Iterable[Any]], dict[str, Any]]

    def initial(self, params: Mapping[str, Any]) -> Files:
        return {}

    def aggregate(
        self,
        *,
        round: int,
        params: Mapping[str, Any],
        current: Files,
        outputs: Mapping[str, Files],
    ) -> Files:
        per_site = {site: json.loads(files[self.name]) for site, files in sorted(outputs.items())}
        document = {"round": round, "pooled": self.pool(per_site.values()), "sites": per_site}
        return {self.name: json.dumps(document, sort_keys=True).encode()}

    def broadcast(self, current: Files) -> Files:
        return {}

    def summary(self, current: Files) -> dict[str, Any]:
        if self.name not in current:
            return {}
        result: dict[str, Any] = json.loads(current[self.name])
        return result


@dataclass(frozen=True, slots=True)
class FederatedPlan:
    name: str
    workflow: str
    """The local workflow each site runs on its exposed dataset."""
    aggregator: Aggregator
    description: str = ""
    default_rounds: int = 1
    finish: Callable[[int, Mapping[str, Any], Files], dict[str, Any]] | None = None
    """Called with the run's id, parameters and final global artifact after the last round,
    before the run is marked done (so it runs again after a crash: it must be idempotent); what
    it returns joins the run's result (a registered model, say)."""
    pushes_model: Callable[[Mapping[str, Any]], bool] | None = None
    """Whether, by the run's parameters, ``finish``'s registered model is offered to the sites
    that delivered the last round (they fetch it with their next poll)."""


class Plans:
    """The federated plans this orchestrator offers, by name; adding one registers its central
    workflow (``kaapana.federation.central``), which drives its runs' rounds."""

    def __init__(self, registry: "Registry") -> None:
        self._plans: dict[str, FederatedPlan] = {}
        self._registry = registry

    def add(self, plan: FederatedPlan) -> None:
        from kaapana.federation.central import central_workflow  # it imports this module

        if plan.name in self._plans:
            raise InvalidInput(f"a federated plan named {plan.name!r} exists already")
        self._registry.add(central_workflow(plan.name, plan.aggregator), source="federation")
        self._plans[plan.name] = plan

    def get(self, name: str) -> FederatedPlan:
        plan = self._plans.get(name)
        if plan is None:
            known = ", ".join(sorted(self._plans)) or "none"
            raise NotFound(f"federated workflow {name!r} not found (known: {known})")
        return plan

    def all(self) -> list[FederatedPlan]:
        return [self._plans[name] for name in sorted(self._plans)]


def pack_files(files: Files) -> bytes:
    """One blob of named files (the global artifact at rest)."""
    document = {name: base64.b64encode(data).decode() for name, data in sorted(files.items())}
    return json.dumps(document).encode()


def unpack_files(blob: bytes) -> Files:
    if not blob:
        return {}
    return {name: base64.b64decode(data) for name, data in json.loads(blob).items()}


__all__ = [
    "Aggregator",
    "FederatedPlan",
    "Files",
    "Plans",
    "SummaryPooling",
    "pack_files",
    "unpack_files",
]
