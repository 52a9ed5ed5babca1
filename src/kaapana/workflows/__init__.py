"""Workflows: definitions, registry, runs and tasks, scheduler, Dask executor, provenance."""

from kaapana.workflows.actions import ActionHandler, ActionRequest, Actions
from kaapana.workflows.context import NodeAddress, SeriesInput, TaskContext
from kaapana.workflows.definitions import (
    CommandOperator,
    ContainerOperator,
    ModeValues,
    NoParameters,
    PythonOperator,
    Resources,
    Step,
    Workflow,
)
from kaapana.workflows.engine import Engine
from kaapana.workflows.gates import Done, Gate, GateAnswer, GateRequest, Gates, Ready, Wait
from kaapana.workflows.registry import ENTRY_POINT_GROUP, Registry
from kaapana.workflows.spec import WorkflowSpec
from kaapana.workflows.states import RunStateValues, TaskStateValues

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActionHandler",
    "ActionRequest",
    "Actions",
    "CommandOperator",
    "ContainerOperator",
    "Done",
    "Engine",
    "Gate",
    "GateAnswer",
    "GateRequest",
    "Gates",
    "ModeValues",
    "NoParameters",
    "NodeAddress",
    "PythonOperator",
    "Ready",
    "Registry",
    "Resources",
    "RunStateValues",
    "SeriesInput",
    "Step",
    "TaskContext",
    "TaskStateValues",
    "Wait",
    "Workflow",
    "WorkflowSpec",
]
