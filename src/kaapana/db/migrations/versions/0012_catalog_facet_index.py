"""catalog: the rows of one field in series order, for facets on PostgreSQL

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-01 13:15:00

A facet counts the values of one field over the matching series. On PostgreSQL this index
yields a field's rows in series order with their values (an index-only scan), so the facet is
a merge join with the matching series, sorted once, instead of a hash join that builds a table
of them for every facet. SQLite joins by probing the (series_pk, field) index and needs none.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_series_attributes_field_series ON series_attributes "
            "(field, series_pk) INCLUDE (text_value, number_value)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_series_attributes_field_series")
