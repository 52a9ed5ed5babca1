"""What the engine answers about workflows and runs: plain, serialisable views."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class StepView(BaseModel):
    name: str
    mode: str
    operator: str
    upstream: list[str]
    retries: int
    timeout: float | None
    cpu: float
    memory_mb: int
    gpu: int
    gate: str | None = None


class WorkflowView(BaseModel):
    name: str
    version: str
    description: str
    definition_hash: str
    source: str
    max_parallel: int | None
    parameters_schema: dict[str, Any]
    steps: list[StepView]
    service: bool = False


class LoadErrorView(BaseModel):
    source: str
    error: str


class TaskView(BaseModel):
    id: int
    step: str
    series_instance_uid: str | None
    state: str
    attempts: int
    progress: float | None
    worker: str | None
    error: str
    started_at: datetime | None
    finished_at: datetime | None


class RunView(BaseModel):
    id: int
    project: str
    project_pk: int
    workflow: str
    version: str
    definition_hash: str
    state: str
    params: dict[str, Any]
    created_by: str
    rerun_of: int | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    task_counts: dict[str, int]
    service: bool = False
    """A run of a service workflow (the platform's own work), shown to administrators only."""


class RunDetailView(RunView):
    series_instance_uids: list[str]
    dag: dict[str, list[str]]
    tasks: list[TaskView]


class ArtifactView(BaseModel):
    name: str
    size: int
    sha256: str
    task_id: int | None
    created_at: datetime


__all__ = [
    "ArtifactView",
    "LoadErrorView",
    "RunDetailView",
    "RunView",
    "StepView",
    "TaskView",
    "WorkflowView",
]
