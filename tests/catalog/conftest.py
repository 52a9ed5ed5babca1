"""Fixtures of the catalog tests."""

from tests.catalog.cohort import cohort, cohort_site

__all__ = ["cohort", "cohort_site"]
