"""catalog: the rows of one field in series order (facets), the index's generation (fields)

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-01 13:15:00

A facet counts the values of one field over the matching series. On PostgreSQL this index
yields a field's rows in series order with their values (an index-only scan), so the facet is
a merge join with the matching series, sorted once, instead of a hash join that builds a table
of them for every facet. SQLite joins by probing the (series_pk, field) index and needs none.

``catalog_generation`` counts the index's write transactions: the field list of a project,
costly to derive from every row of its series, is kept until the count or the project's
series change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    generation = op.create_table(
        "catalog_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(generation, [{"id": 1, "value": 0}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_series_attributes_field_series ON series_attributes "
            "(field, series_pk) INCLUDE (text_value, number_value)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_series_attributes_field_series")
    op.drop_table("catalog_generation")
