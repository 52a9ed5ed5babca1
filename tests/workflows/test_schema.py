"""The migrated schema is the models' schema (SQLite and PostgreSQL)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kaapana.db.models import Base
from kaapana.platform import Platform


def test_migrations_match_the_models(platform: Platform) -> None:
    with platform.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
