"""The index database: engine, models and migrations."""

from kaapana.db.engine import create_engine_for, session_factory, write_transaction
from kaapana.db.migrate import upgrade

__all__ = ["create_engine_for", "session_factory", "upgrade", "write_transaction"]
