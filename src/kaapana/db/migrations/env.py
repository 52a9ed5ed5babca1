"""Alembic environment: the engine comes from the caller, never from an ini file."""

from alembic import context

from kaapana.db.migrate import include_object
from kaapana.db.models import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
