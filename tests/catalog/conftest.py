"""The REST fixture of the API tests, for the catalog's routes."""

from tests.api.conftest import site

__all__ = ["site"]
