"""catalog: the index's generation, for the kept field lists

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 13:15:00

``catalog_generation`` counts the index's write transactions: the field list of a project,
costly to derive from every row of its series, is kept until the count or the project's
series change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
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


def downgrade() -> None:
    op.drop_table("catalog_generation")
