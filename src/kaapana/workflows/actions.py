"""Platform actions: changes a task asks of the platform (tag series, delete series, register a
model, index features), carried out on the scheduler side once the task succeeded.

Workers never open the database, so an operator cannot tag a series itself. It calls
``ctx.request(action, **payload)``; the request is written to the attempt's results file beside
``store_dicom`` and ``add_artifact`` records, and the scheduler hands it to the handler the
platform registered under that name, after the DICOM results are in the archive. An unknown
action fails the task before anything of it is kept. Handlers must be idempotent: a task whose
results fail to be kept is retried and asks again.
"""

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kaapana.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One request of a succeeded task, with what a handler needs to authorise and apply it."""

    action: str
    run_id: int
    project_pk: int
    project: str
    series_instance_uid: str | None
    """The series of a per-series task; None for a per-run task."""
    input_series: tuple[str, ...]
    """Series Instance UIDs the task was given: a handler may refuse to touch others."""
    payload: Mapping[str, Any] = field(default_factory=dict)


ActionHandler = Callable[[ActionRequest], str]
"""Applies a request and answers one line for the task log; raises ``KaapanaError`` to refuse."""


class Actions:
    """The registry of action handlers (``Engine.actions``), filled by the composition root."""

    def __init__(self) -> None:
        self._handlers: dict[str, ActionHandler] = {}
        self._lock = threading.Lock()

    def register(self, name: str, handler: ActionHandler) -> None:
        with self._lock:
            if name in self._handlers:
                raise ValueError(f"action {name!r} is registered already")
            self._handlers[name] = handler

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def check(self, names: Iterable[str]) -> None:
        """Refuse requests of actions nobody handles, before any of the task's results is kept."""
        unknown = sorted(set(names) - set(self._handlers))
        if unknown:
            raise InvalidInput(
                f"the task requests unknown platform actions {unknown}; known: {self.names()}"
            )

    def apply(self, request: ActionRequest) -> str:
        return self._handlers[request.action](request)


__all__ = ["ActionHandler", "ActionRequest", "Actions"]
