"""federated model push: per site job, whether the final model was offered and taken

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("federated_jobs") as batch:
        batch.add_column(
            sa.Column("model_push", sa.String(length=24), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column(
                "model_push_detail", sa.String(length=1024), nullable=False, server_default=""
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("federated_jobs") as batch:
        batch.drop_column("model_push_detail")
        batch.drop_column("model_push")
