"""The local workflows of the built-in federated plans (run at each participant)."""

from kaapana.federation.radiomics import RADIOMICS_WORKFLOW
from kaapana.federation.statistics import STATISTICS_WORKFLOW

WORKFLOWS = [RADIOMICS_WORKFLOW, STATISTICS_WORKFLOW]
