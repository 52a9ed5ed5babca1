"""Fixtures of the catalog tests: the REST site of the API tests and the dataset cohorts."""

from tests.api.conftest import site
from tests.catalog.cohort import cohort, cohort_site

__all__ = ["cohort", "cohort_site", "site"]
