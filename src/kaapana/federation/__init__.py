"""Federation: sites and keys, the outbound-only protocol, the data owner's control at each
participant, sealed uploads, and federated workflows run in rounds as workflow engine runs."""

from kaapana.federation.aggregation import Aggregator, FederatedPlan, Plans
from kaapana.federation.service import Federation
from kaapana.federation.states import (
    ApprovalValues,
    FederatedRunStateValues,
    JobStateValues,
    PeerRoleValues,
)

__all__ = [
    "Aggregator",
    "ApprovalValues",
    "FederatedPlan",
    "FederatedRunStateValues",
    "Federation",
    "JobStateValues",
    "PeerRoleValues",
    "Plans",
]
