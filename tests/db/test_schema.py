"""The migrated schema is the models' schema (SQLite and PostgreSQL)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kaapana.db.migrate import include_object
from kaapana.db.models import Base
from kaapana.platform import Platform


def test_migrations_match_the_models(platform: Platform) -> None:
    with platform.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
