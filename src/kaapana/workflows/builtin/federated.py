"""The local workflows of the built-in federated plans without extra libraries (run at each
participant); federated-radiomics and federated-training have modules of their own."""

from kaapana.federation.statistics import STATISTICS_WORKFLOW

WORKFLOWS = [STATISTICS_WORKFLOW]
