"""The local workflows of the built-in federated plans (run at each participant)."""

from kaapana.federation.statistics import STATISTICS_WORKFLOW

WORKFLOWS = [STATISTICS_WORKFLOW]
