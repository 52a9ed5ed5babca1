"""series references and validation

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 06:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "series_references",
        sa.Column("series_pk", sa.Integer(), nullable=False),
        sa.Column("referenced_series_uid", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["series_pk"], ["series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("series_pk", "referenced_series_uid"),
    )
    with op.batch_alter_table("series_references", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_series_references_referenced_series_uid"),
            ["referenced_series_uid"],
            unique=False,
        )
    op.create_table(
        "series_validation",
        sa.Column("series_pk", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("errors", _JSON, nullable=False),
        sa.Column("warnings", _JSON, nullable=False),
        sa.Column("validator", sa.String(length=32), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["series_pk"], ["series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("series_pk"),
    )
    with op.batch_alter_table("series_validation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_series_validation_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("series_validation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_validation_status"))
    op.drop_table("series_validation")
    with op.batch_alter_table("series_references", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_references_referenced_series_uid"))
    op.drop_table("series_references")
