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
    # A plain ADD COLUMN with a constant default, on SQLite too: batch mode would copy the
    # series table of a full archive, and its DROP TABLE failed ("database table is locked").
    op.add_column(
        "series", sa.Column("announcing", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_index("ix_series_announcing", "series", ["announcing"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_series_announcing", table_name="series")
    op.drop_column("series", "announcing")
