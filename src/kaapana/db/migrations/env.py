"""Alembic environment: the engine comes from the caller, never from an ini file."""

from alembic import context

from kaapana.db.models import Base

engine = context.config.attributes["engine"]
# SQLite's FTS5 index of the catalog (and its shadow tables) is created by raw SQL in its
# migration and has no model; autogenerate must not propose to drop it.
_UNMODELLED_PREFIX = "series_text_fts"


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    unmodelled = type_ == "table" and reflected and compare_to is None
    return not (unmodelled and (name or "").startswith(_UNMODELLED_PREFIX))


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=_include,
    )
    with context.begin_transaction():
        context.run_migrations()
