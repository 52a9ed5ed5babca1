"""series: announcements that survive a crash

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 16:30:00

``series.announcing`` is set in the transaction that marks a series stable and cleared once
every ``SeriesArrived`` handler has run, so a series whose announcement a crash interrupted is
announced again after the restart instead of never getting its catalog entry, thumbnail or
triggered runs. Series stable before this revision were announced already.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.add_column(
            sa.Column("announcing", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_index("ix_series_announcing", ["announcing"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.drop_index("ix_series_announcing")
        batch.drop_column("announcing")
