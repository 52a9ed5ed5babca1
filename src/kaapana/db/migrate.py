"""Bring a database to the newest schema; run on every start, so upgrades need no extra step."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied (idempotent; serialised by the database)."""
    command.upgrade(alembic_config(engine), "head")


__all__ = ["alembic_config", "upgrade"]
