"""Where workflows come from: built-ins, installed packages, and the plugins folder.

Installed packages declare an entry point in the group ``kaapana.workflows`` whose object is a
``Workflow``, a list of them, or a callable returning either. The plugins folder holds ``*.py``
modules (every module-level ``Workflow`` counts) and ``*.yaml`` specs; ``reload`` reads it again
without a restart. A source that fails to load is listed with its error and the others load.
"""

import importlib.util
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import cloudpickle

from kaapana.config import Settings
from kaapana.errors import NotFound
from kaapana.workflows.definitions import Workflow
from kaapana.workflows.library import builtin_library, builtin_workflows
from kaapana.workflows.spec import WorkflowSpec

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "kaapana.workflows"
_PLUGIN_PACKAGE = "kaapana_plugins"


@dataclass(frozen=True, slots=True)
class LoadError:
    """A workflow source that did not load, and why."""

    source: str
    error: str


@dataclass(frozen=True, slots=True)
class Registered:
    workflow: Workflow
    source: str


class Registry:
    """The workflows this installation knows, by name."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._workflows: dict[str, Registered] = {}
        self._added: dict[str, Registered] = {}
        self.errors: list[LoadError] = []
        self.reload()

    def reload(self) -> None:
        """Read every source again; what fails is recorded in ``errors``."""
        found: dict[str, Registered] = {}
        errors: list[LoadError] = []

        def take(source: str, load: Callable[[], Iterable[Workflow]]) -> None:
            try:
                workflows = list(load())
                for workflow in workflows:
                    if not isinstance(workflow, Workflow):
                        raise TypeError(f"expected Workflow objects, got {workflow!r}")
            except Exception as exc:
                log.warning("workflow source %s failed to load: %s", source, exc)
                errors.append(LoadError(source, f"{type(exc).__name__}: {exc}"))
                return
            for workflow in workflows:
                if workflow.name in found:
                    errors.append(
                        LoadError(
                            source,
                            f"workflow {workflow.name!r} is defined already by "
                            f"{found[workflow.name].source}",
                        )
                    )
                    continue
                found[workflow.name] = Registered(workflow, source)

        take("builtin", builtin_workflows)
        for source, load in builtin_library():
            take(source, load)
        if self._settings.workflow_entry_points:
            for point in entry_points(group=ENTRY_POINT_GROUP):
                take(f"entry point {point.name}", lambda point=point: _flatten(point.load()))
        plugins = self._settings.resolved_plugins_dir
        if plugins.is_dir():
            for path in sorted(plugins.iterdir()):
                if path.suffix == ".py":
                    take(str(path), lambda path=path: _module_workflows(path))
                elif path.suffix in (".yaml", ".yml"):
                    take(str(path), lambda path=path: [WorkflowSpec.from_file(path).to_workflow()])
        with self._lock:
            for name, registered in self._added.items():
                found.setdefault(name, registered)
            self._workflows = found
            self.errors = errors

    def add(self, workflow: Workflow, *, source: str = "api") -> None:
        """Register a workflow from code (embedding applications, tests); kept across reloads."""
        with self._lock:
            self._added[workflow.name] = Registered(workflow, source)
            self._workflows[workflow.name] = self._added[workflow.name]

    def get(self, name: str) -> Workflow:
        with self._lock:
            registered = self._workflows.get(name)
        if registered is None:
            raise NotFound(f"workflow {name!r} not found")
        return registered.workflow

    def source(self, name: str) -> str:
        with self._lock:
            return self._workflows[name].source

    def all(self) -> list[Workflow]:
        with self._lock:
            return sorted((r.workflow for r in self._workflows.values()), key=lambda w: w.name)


def _flatten(value: Any) -> list[Workflow]:
    if callable(value) and not isinstance(value, Workflow):
        value = value()
    return [value] if isinstance(value, Workflow) else list(value)


def _module_workflows(path: Path) -> list[Workflow]:
    name = f"{_PLUGIN_PACKAGE}.{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    # Workers cannot import a plugin file by name: its functions travel by value.
    cloudpickle.register_pickle_by_value(module)
    return [value for value in vars(module).values() if isinstance(value, Workflow)]


__all__ = ["ENTRY_POINT_GROUP", "LoadError", "Registered", "Registry"]
