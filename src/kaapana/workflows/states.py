"""Run and task states, and which of them are final."""

from enum import StrEnum


class RunStateValues(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


class TaskStateValues(StrEnum):
    pending = "pending"
    queued = "queued"
    deferred = "deferred"
    """Waiting for its step's gate, without a worker (``kaapana.workflows.gates``)."""
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
    upstream_failed = "upstream_failed"
    canceled = "canceled"


ACTIVE_RUN_STATES = frozenset({RunStateValues.queued, RunStateValues.running})
DONE_TASK_STATES = frozenset(
    {
        TaskStateValues.succeeded,
        TaskStateValues.failed,
        TaskStateValues.skipped,
        TaskStateValues.upstream_failed,
        TaskStateValues.canceled,
    }
)
GOOD_TASK_STATES = frozenset({TaskStateValues.succeeded, TaskStateValues.skipped})
BAD_TASK_STATES = DONE_TASK_STATES - GOOD_TASK_STATES
RETRYABLE_TASK_STATES = BAD_TASK_STATES

__all__ = [
    "ACTIVE_RUN_STATES",
    "BAD_TASK_STATES",
    "DONE_TASK_STATES",
    "GOOD_TASK_STATES",
    "RETRYABLE_TASK_STATES",
    "RunStateValues",
    "TaskStateValues",
]
