"""HTTP interface: health, and the REST API under /api/v1."""

from kaapana.api.app import create_app

__all__ = ["create_app"]
