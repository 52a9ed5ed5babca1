"""Declaring workflows: steps of operators forming a DAG, with parameters as a pydantic model.

Everything is checked in the constructors (strict when writing), so a ``Workflow`` that exists is
runnable: step names are unique folder names, upstream steps exist, the graph has no cycle. The
definition hash covers what decides a result (operator code or command, parameters schema, step
graph and modes), so a changed workflow is a new version even if its author forgot to bump it.
"""

import hashlib
import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from kaapana.auth.roles import PermissionValues
from kaapana.errors import InvalidInput

if TYPE_CHECKING:
    from kaapana.workflows.context import TaskContext

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
INPUT_STEP = "get-input-data"
"""The folder (Kaapana's name) where every series' DICOM files are, for steps without upstream."""


class ModeValues(StrEnum):
    """How a step fans out: one task per series, or one task over all series of the run."""

    per_series = "per_series"
    per_run = "per_run"


class NoParameters(BaseModel):
    """The parameters of a workflow that takes none."""

    model_config = ConfigDict(extra="forbid")


def check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(
            f"'{what}' must be 1-128 lower-case letters, digits, '.', '_' or '-' starting with a "
            f"letter or digit, got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Resources:
    """What one task needs: passed to container engines (`--cpus`, `--memory`, `--gpus`) and
    recorded; Dask places tasks without it (one task per worker thread)."""

    cpu: float = 1.0
    memory_mb: int = 0
    gpu: int = 0

    def __post_init__(self) -> None:
        if self.cpu <= 0:
            raise InvalidInput(f"'cpu' must be > 0, got {self.cpu}")
        if self.memory_mb < 0 or self.gpu < 0:
            raise InvalidInput(
                f"'memory_mb' and 'gpu' must be >= 0, got {self.memory_mb} and {self.gpu}"
            )


class Operator(Protocol):
    """What a step executes; ``fingerprint`` feeds the definition hash."""

    @property
    def kind(self) -> str: ...

    def fingerprint(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PythonOperator:
    """A Python callable ``run(ctx: TaskContext)``, executed in a child process of a worker.

    The callable must be importable on the workers by module and name (plugin modules are sent by
    value instead).
    """

    func: "Callable[[TaskContext], None]"
    kind: str = "python"

    def __post_init__(self) -> None:
        if not callable(self.func):
            raise InvalidInput(f"'operator' must be callable, got {self.func!r}")

    def fingerprint(self) -> str:
        try:
            source = inspect.getsource(self.func)
        except (OSError, TypeError):
            source = ""
        return f"python:{self.func.__module__}:{self.func.__qualname__}:{source}"


@dataclass(frozen=True, slots=True)
class CommandOperator:
    """Any executable following Kaapana's processing-container contract (env and folders)."""

    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    kind: str = "command"

    def __post_init__(self) -> None:
        if isinstance(self.command, str) or not self.command:
            raise InvalidInput(
                f"'command' must be a non-empty list of arguments, got {self.command!r}"
            )
        object.__setattr__(self, "command", tuple(str(part) for part in self.command))
        object.__setattr__(self, "env", {str(k): str(v) for k, v in self.env.items()})

    def fingerprint(self) -> str:
        return "command:" + json.dumps([list(self.command), sorted(self.env.items())])


@dataclass(frozen=True, slots=True)
class ContainerOperator:
    """A processing-container image run with docker or podman; ``WORKFLOW_DIR`` is ``/data``."""

    image: str
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    kind: str = "container"

    def __post_init__(self) -> None:
        if not isinstance(self.image, str) or not self.image.strip():
            raise InvalidInput(f"'image' must be a container image name, got {self.image!r}")
        object.__setattr__(self, "command", tuple(str(part) for part in self.command))
        object.__setattr__(self, "env", {str(k): str(v) for k, v in self.env.items()})

    def fingerprint(self) -> str:
        return "container:" + json.dumps([self.image, list(self.command), sorted(self.env.items())])


AnyOperator = PythonOperator | CommandOperator | ContainerOperator


@dataclass(frozen=True, slots=True)
class Step:
    """One node of the DAG: an operator, how it fans out, what it waits for, its limits."""

    name: str
    operator: AnyOperator
    mode: ModeValues = ModeValues.per_series
    upstream: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    retries: int = 0
    timeout: float | None = None
    artifacts: tuple[str, ...] = ()
    """Glob patterns, relative to the output folder, of files kept as artifacts of the run."""
    references: bool = False
    """Also give each task the series its series reference (a SEG's image series, from the
    series-level DICOM JSON) that the run's project holds: ``ctx.references``."""
    companions: bool = False
    """Also give each task the run's other input series that reference a series its own series
    references (the other SEGs of a SEG's image series): ``ctx.companions``."""
    partial: bool = False
    """Of a per-run step: run once every upstream task is done, over the series whose upstream
    tasks succeeded, so that one failed series does not cost the run's summary; the run still
    ends failed. Without upstream successes it is ``upstream_failed`` as usual."""
    gate: str | None = None
    """The registered gate (``Engine.gates``) the scheduler asks before each execution of the
    step's task; the task waits ``deferred``, without a worker, until the gate lets it run, and
    runs again each time the gate does, until it says done (``kaapana.workflows.gates``)."""

    def __post_init__(self) -> None:
        check_name("step name", self.name)
        if self.name == INPUT_STEP:
            raise InvalidInput(f"step name {INPUT_STEP!r} is reserved for the input series")
        if callable(self.operator) and not isinstance(
            self.operator, PythonOperator | CommandOperator | ContainerOperator
        ):
            object.__setattr__(self, "operator", PythonOperator(self.operator))
        if not isinstance(self.operator, PythonOperator | CommandOperator | ContainerOperator):
            raise InvalidInput(
                f"'operator' of step {self.name!r} must be a callable or an operator, "
                f"got {self.operator!r}"
            )
        try:
            object.__setattr__(self, "mode", ModeValues(self.mode))
        except ValueError as exc:
            raise InvalidInput(
                f"'mode' of step {self.name!r} must be per_series or per_run, got {self.mode!r}"
            ) from exc
        if isinstance(self.upstream, str):
            object.__setattr__(self, "upstream", (self.upstream,))
        object.__setattr__(self, "upstream", tuple(self.upstream))
        if not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidInput(f"'retries' of step {self.name!r} must be >= 0, got {self.retries}")
        if self.timeout is not None and self.timeout <= 0:
            raise InvalidInput(f"'timeout' of step {self.name!r} must be > 0, got {self.timeout}")
        if self.partial and (self.mode is not ModeValues.per_run or not self.upstream):
            raise InvalidInput(
                f"'partial' of step {self.name!r} needs a per_run step with upstream steps"
            )
        if self.gate is not None:
            check_name(f"gate of step {self.name!r}", self.gate)
        if isinstance(self.artifacts, str):
            object.__setattr__(self, "artifacts", (self.artifacts,))
        for pattern in self.artifacts:
            if pattern.startswith("/") or ".." in pattern.split("/"):
                raise InvalidInput(
                    f"'artifacts' of step {self.name!r} must be relative patterns, got {pattern!r}"
                )

    @property
    def input_dir(self) -> str:
        """The folder a task reads (``OPERATOR_IN_DIR``): the first upstream's, or the input."""
        return self.upstream[0] if self.upstream else INPUT_STEP


class Workflow:
    """A named, versioned DAG of steps with a parameters model."""

    def __init__(
        self,
        *,
        name: str,
        version: str,
        steps: Sequence[Step],
        description: str = "",
        parameters: type[BaseModel] = NoParameters,
        max_parallel: int | None = None,
        needs_series: bool = True,
        project_params: Sequence[str] = (),
        resolve_params: Mapping[str, str] | None = None,
        node_params: Sequence[str] = (),
        permission: PermissionValues = PermissionValues.write,
        federated_outputs: Sequence[str] = (),
        federated_weights: Sequence[str] = (),
        service: bool = False,
    ) -> None:
        """``needs_series=False``: a workflow of per-run steps only (an import) may run without
        input series. ``project_params`` name parameters holding projects the run stores into
        besides its own; creating the run needs write access there too. ``resolve_params``
        maps parameters to the platform resolver that looks their value up when the run is
        created (``kaapana.workflows.resolvers``), e.g. ``{"model": "model"}``. ``node_params``
        name parameters holding registered DICOM nodes: checked when the run is created, their
        addresses handed to the tasks (``TaskContext.node``). ``permission``: what creating,
        retrying and rerunning a run needs on its project (``manage`` for deleting data).
        ``federated_outputs`` name the artifacts (file names) that may leave a site when the
        workflow runs as a federated job; nothing else is ever uploaded. ``federated_weights``
        name those of them that are model weights (torch state-dict files): they may leave
        although they are tensors, and only as state dicts (``kaapana.federation.outputs``).
        ``service``: the platform's own work on arriving series (the catalog's thumbnails and
        validation), started by the platform's system trigger rules and never by users' rules;
        its runs are shown to administrators only, and its tasks, platform code, get the
        installation's settings (``TaskContext.settings``) to open the index and storage."""
        self.name = check_name("name", name)
        self.service = bool(service)
        if not isinstance(version, str) or not version.strip() or len(version) > 64:
            raise InvalidInput(f"'version' must be a string of 1-64 characters, got {version!r}")
        self.version = version
        self.description = description
        if not (isinstance(parameters, type) and issubclass(parameters, BaseModel)):
            raise InvalidInput(f"'parameters' must be a pydantic model class, got {parameters!r}")
        self.parameters = parameters
        if max_parallel is not None and max_parallel < 1:
            raise InvalidInput(f"'max_parallel' must be >= 1, got {max_parallel}")
        self.max_parallel = max_parallel
        self.steps: dict[str, Step] = _check_graph(name, steps)
        if not needs_series and any(s.mode is ModeValues.per_series for s in steps):
            raise InvalidInput(
                f"workflow {name!r} has per-series steps, so it cannot run without series"
            )
        self.needs_series = needs_series
        unknown = [p for p in project_params if p not in parameters.model_fields]
        if unknown:
            raise InvalidInput(f"'project_params' names unknown parameters {unknown}")
        self.project_params = tuple(project_params)
        resolve_params = dict(resolve_params or {})
        unknown = [p for p in resolve_params if p not in parameters.model_fields]
        if unknown:
            raise InvalidInput(f"'resolve_params' names unknown parameters {unknown}")
        self.resolve_params = resolve_params
        unknown = [p for p in node_params if p not in parameters.model_fields]
        if unknown:
            raise InvalidInput(f"'node_params' names unknown parameters {unknown}")
        self.node_params = tuple(node_params)
        try:
            self.permission = PermissionValues(permission)
        except ValueError as exc:
            raise InvalidInput(
                f"'permission' must be one of {', '.join(PermissionValues)}, got {permission!r}"
            ) from exc
        if isinstance(federated_outputs, str):
            federated_outputs = (federated_outputs,)
        for output in federated_outputs:
            if not isinstance(output, str) or not output or "/" in output or output in (".", ".."):
                raise InvalidInput(
                    f"'federated_outputs' must be artifact file names, got {output!r}"
                )
        self.federated_outputs = tuple(federated_outputs)
        if isinstance(federated_weights, str):
            federated_weights = (federated_weights,)
        stray = [name for name in federated_weights if name not in self.federated_outputs]
        if stray:
            raise InvalidInput(f"'federated_weights' {stray} are not among 'federated_outputs'")
        self.federated_weights = tuple(federated_weights)

    @cached_property
    def order(self) -> list[str]:
        """Step names, each after all its upstream steps (stable: declaration order breaks ties)."""
        return _topological(self.steps)

    def parameters_schema(self) -> dict[str, Any]:
        return self.parameters.model_json_schema()

    @cached_property
    def definition_hash(self) -> str:
        graph = [
            {
                "name": step.name,
                "mode": step.mode.value,
                "upstream": list(step.upstream),
                "operator": step.operator.fingerprint(),
                # Only when set, so the hashes of steps without it stay as they were.
                **({"references": True} if step.references else {}),
                **({"companions": True} if step.companions else {}),
                **({"partial": True} if step.partial else {}),
                **({"gate": step.gate} if step.gate else {}),
            }
            for step in self.steps.values()
        ]
        document: dict[str, Any] = {"parameters": self.parameters_schema(), "steps": graph}
        if self.federated_outputs:
            # What may leave a site is part of what its data owner approves.
            document["federated_outputs"] = sorted(self.federated_outputs)
        if self.federated_weights:
            document["federated_weights"] = sorted(self.federated_weights)
        encoded = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Checked, defaults filled in, as JSON; ``InvalidInput`` names every wrong field."""
        try:
            model = self.parameters.model_validate(dict(params))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'parameters'}: {error['msg']}"
                f" (got {error.get('input')!r})"
                for error in exc.errors()
            )
            raise InvalidInput(f"invalid parameters of workflow {self.name!r}: {problems}") from exc
        return model.model_dump(mode="json")

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, version={self.version!r})"


def _check_graph(workflow: str, steps: Sequence[Step]) -> dict[str, Step]:
    if not steps:
        raise InvalidInput(f"workflow {workflow!r} has no steps")
    by_name: dict[str, Step] = {}
    for step in steps:
        if not isinstance(step, Step):
            raise InvalidInput(f"steps of workflow {workflow!r} must be Step, got {step!r}")
        if step.name in by_name:
            raise InvalidInput(f"workflow {workflow!r} has two steps named {step.name!r}")
        by_name[step.name] = step
    for step in steps:
        unknown = [name for name in step.upstream if name not in by_name]
        if unknown:
            raise InvalidInput(
                f"step {step.name!r} of workflow {workflow!r} names unknown upstream steps "
                f"{unknown}"
            )
    _topological(by_name)
    return by_name


def _topological(steps: Mapping[str, Step]) -> list[str]:
    done: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise InvalidInput(f"the steps form a cycle: {' -> '.join(cycle)}")
        visiting.append(name)
        for upstream in steps[name].upstream:
            visit(upstream)
        visiting.pop()
        done.append(name)

    for name in steps:
        visit(name)
    return done


__all__ = [
    "INPUT_STEP",
    "AnyOperator",
    "CommandOperator",
    "ContainerOperator",
    "ModeValues",
    "NoParameters",
    "Operator",
    "PythonOperator",
    "Resources",
    "Step",
    "Workflow",
    "check_name",
]
