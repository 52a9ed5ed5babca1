"""Bring a database to the newest schema; run on every start, so upgrades need no extra step."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
# The catalog's full-text indexes (SQLite's FTS5 table with its shadow tables, PostgreSQL's GIN
# expression index) are created by raw SQL in their migration and have no model; comparing the
# schema with the models must leave them alone.
_UNMODELLED_PREFIXES = ("series_text_fts", "ix_series_text_tsv")


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's filter for autogenerate and schema comparison: skip the unmodelled tables."""
    unmodelled = type_ in ("table", "index") and reflected and compare_to is None
    return not (unmodelled and (name or "").startswith(_UNMODELLED_PREFIXES))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied (idempotent; serialised by the database)."""
    command.upgrade(alembic_config(engine), "head")


__all__ = ["alembic_config", "include_object", "upgrade"]
