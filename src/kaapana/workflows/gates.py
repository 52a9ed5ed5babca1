"""Gates: steps that wait for something outside the engine without holding a worker.

A step may name a gate (``Step(gate="...")``), registered by the composition root like platform
actions (``Engine.gates``). Before the scheduler submits a task of such a step it asks the gate,
on the scheduler side (the process that owns the database), outside its own transactions:

- ``Wait(until)``: not yet. The task is ``deferred`` and costs no worker; the scheduler asks
  again at ``until`` (or on its next pass without one), or at once after ``Engine.poke_gates``,
  which whoever sees the awaited event calls (an upload arriving, say).
- ``Ready(files)``: run now. The files are written into the attempt's ``gate-input`` folder
  (``TaskContext.gate_dir``) and the task goes to a worker like any other; workers never open
  the database, so this is how the gate hands them what they work on.
- ``Done()``: nothing (more) to do; the task succeeds without running.
- raising ``KaapanaError``: the gate has decided against the task; it fails at once, with the
  error's message, without retries (asking again would decide the same).

A task of a gated step that succeeded goes back to ``deferred`` and its gate is asked again:
it runs once per ``Ready`` (a new attempt, with its own log, each time) until its gate answers
``Done``. That is how a step runs once per round of something that lasts days, in the manner of
Airflow's deferrable operators. Retries, timeouts and cancel apply to each execution as to any
task; a task interrupted by a restart is asked about again, so gates must answer from what is
recorded (idempotently), not from what they remember.

``ended`` tells the gate that a run with a gated step ended (succeeded, failed or canceled), so
that whatever it drives ends with it.
"""

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kaapana.errors import InvalidInput

log = logging.getLogger(__name__)

GATE_INPUT = "gate-input"
"""The attempt's folder of the files a gate's ``Ready`` hands the task."""


@dataclass(frozen=True, slots=True)
class GateRequest:
    """What a gate is asked about: one task of a run, and how often it has run so far."""

    run_id: int
    task_id: int
    project_pk: int
    params: Mapping[str, Any]
    executions: int
    """Succeeded executions of this task so far (0: it never ran)."""


@dataclass(frozen=True, slots=True)
class Wait:
    until: datetime | None = None
    """When to ask again (naive UTC); None: on the scheduler's next pass."""


@dataclass(frozen=True, slots=True)
class Ready:
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Relative paths in the task's ``gate-input`` folder, and their content."""


@dataclass(frozen=True, slots=True)
class Done:
    pass


GateAnswer = Wait | Ready | Done


class Gate(Protocol):
    def consult(self, request: GateRequest) -> GateAnswer:
        """Whether the task may run now; raises ``KaapanaError`` to fail it."""
        ...

    def ended(self, run_id: int, state: str, error: str) -> None:
        """The run ``run_id``, which has a step of this gate, ended in ``state``."""
        ...


class Gates:
    """The registry of gates (``Engine.gates``), filled by the composition root."""

    def __init__(self) -> None:
        self._gates: dict[str, Gate] = {}
        self._lock = threading.Lock()

    def register(self, name: str, gate: Gate) -> None:
        with self._lock:
            if name in self._gates:
                raise ValueError(f"gate {name!r} is registered already")
            self._gates[name] = gate

    def names(self) -> list[str]:
        return sorted(self._gates)

    def get(self, name: str) -> Gate:
        with self._lock:
            gate = self._gates.get(name)
        if gate is None:
            raise InvalidInput(f"no gate named {name!r} is registered; known: {self.names()}")
        return gate

    def end(self, names: Iterable[str], run_id: int, state: str, error: str) -> None:
        """Tell each named gate that the run ended (after its commit); a gate that fails is
        logged and does not keep the others from hearing it."""
        for name in sorted(names):
            try:
                self.get(name).ended(run_id, state, error)
            except Exception:
                log.exception("gate %s: ending run %d failed", name, run_id)


__all__ = ["GATE_INPUT", "Done", "Gate", "GateAnswer", "GateRequest", "Gates", "Ready", "Wait"]
