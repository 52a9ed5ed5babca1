"""The words of the federation protocol, shared by orchestrator and participant."""

from enum import StrEnum


class PeerRoleValues(StrEnum):
    """What a registered peer is to this installation."""

    participant = "participant"  # registered at an orchestrator; it polls us
    orchestrator = "orchestrator"  # registered at a participant; we poll it


class ApprovalValues(StrEnum):
    """How a participant approves jobs of an allowed workflow."""

    automatic = "automatic"
    manual = "manual"


class JobStateValues(StrEnum):
    """A remote job's state; both ends use the same names."""

    queued = "queued"  # created at the orchestrator, not yet fetched
    delivered = "delivered"  # fetched by the participant
    pending_approval = "pending_approval"  # held at the site until its data owner decides
    approved = "approved"
    running = "running"  # the site's workflow run executes it
    uploading = "uploading"  # finished at the site; outputs on their way
    succeeded = "succeeded"  # outputs received (orchestrator) / accepted (participant)
    failed = "failed"
    refused = "refused"  # the site's policy does not allow it
    denied = "denied"  # the site's data owner said no
    canceled = "canceled"
    timed_out = "timed_out"  # the site did not deliver within the per-site timeout


FINAL_JOB_STATES = frozenset(
    {
        JobStateValues.succeeded,
        JobStateValues.failed,
        JobStateValues.refused,
        JobStateValues.denied,
        JobStateValues.canceled,
        JobStateValues.timed_out,
    }
)
"""States a job never leaves."""

REPORTABLE_JOB_STATES = frozenset(
    {
        JobStateValues.pending_approval,
        JobStateValues.approved,
        JobStateValues.running,
        JobStateValues.failed,
        JobStateValues.refused,
        JobStateValues.denied,
        JobStateValues.canceled,
    }
)
"""What a participant may report as a job's state (``succeeded`` comes only with an upload)."""


class ModelPushValues(StrEnum):
    """Where the final model pushed to a site with its last job is."""

    offered = "offered"  # the site fetches it with its next poll
    registered = "registered"  # in the site's model registry
    refused = "refused"  # the site did not take it (the reason is in the detail)


MODEL_PUSH_ANSWERS = frozenset({ModelPushValues.registered, ModelPushValues.refused})
"""What a participant reports of a pushed model."""


class FederatedRunStateValues(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


__all__ = [
    "FINAL_JOB_STATES",
    "MODEL_PUSH_ANSWERS",
    "REPORTABLE_JOB_STATES",
    "ApprovalValues",
    "FederatedRunStateValues",
    "JobStateValues",
    "ModelPushValues",
    "PeerRoleValues",
]
