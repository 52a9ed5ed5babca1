"""Parameter resolvers: values a run needs from the platform, looked up when the run is created.

A parameter such as ``model: "lungs"`` names something only the platform can find (a model in
the registry, its file in result storage). Workers never open the database, so the lookup
happens on the creating side: the workflow names the parameter and a resolver
(``Workflow(resolve_params={"model": "model"})``), the platform registers the resolver on
``Engine.resolvers``, and the run records the answer beside its parameters, under
``RESOLVED_PARAMS``. Tasks read it as ``ctx.resolved``; a rerun keeps the same answer (the same
model version), so it reproduces the run.
"""

import threading
from collections.abc import Callable, Mapping
from typing import Any

from kaapana.errors import InvalidInput

RESOLVED_PARAMS = "_resolved"
"""Key of the resolved values in a run's stored parameters (no parameter can be named so)."""

ParamResolver = Callable[[int, Any], dict[str, Any]]
"""``(project_pk, value) -> JSON``; raises ``KaapanaError`` (e.g. ``NotFound``) to refuse."""


class Resolvers:
    """The parameter resolvers (``Engine.resolvers``), registered by the composition root."""

    def __init__(self) -> None:
        self._resolvers: dict[str, ParamResolver] = {}
        self._lock = threading.Lock()

    def register(self, name: str, resolver: ParamResolver) -> None:
        with self._lock:
            if name in self._resolvers:
                raise ValueError(f"resolver {name!r} is registered already")
            self._resolvers[name] = resolver

    def resolve(
        self, resolve_params: Mapping[str, str], params: dict[str, Any], project_pk: int
    ) -> dict[str, Any]:
        """``params`` with the resolved values of the named parameters added."""
        if not resolve_params:
            return params
        resolved: dict[str, Any] = {}
        for param, name in resolve_params.items():
            resolver = self._resolvers.get(name)
            if resolver is None:
                raise InvalidInput(
                    f"parameter {param!r} needs resolver {name!r}, which this installation "
                    f"does not have; known: {sorted(self._resolvers)}"
                )
            resolved[param] = resolver(project_pk, params[param])
        return {**params, RESOLVED_PARAMS: resolved}


def split_params(stored: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's stored parameters as (parameters, resolved values)."""
    params = {key: value for key, value in stored.items() if key != RESOLVED_PARAMS}
    return params, dict(stored.get(RESOLVED_PARAMS) or {})


__all__ = ["RESOLVED_PARAMS", "ParamResolver", "Resolvers", "split_params"]
