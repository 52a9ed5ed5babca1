"""federated runs on the workflow engine: the run of the central workflow, gated executions

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 16:00:00

``federated_runs.run_pk`` links a federated run to the engine run of its central workflow,
whose gated task runs once per round. ``tasks.executions`` counts the succeeded executions of
a gated step's task (0 for every other task).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("executions", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("federated_runs") as batch:
        batch.add_column(sa.Column("run_pk", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_federated_runs_run_pk_runs", "runs", ["run_pk"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("federated_runs") as batch:
        batch.drop_constraint("fk_federated_runs_run_pk_runs", type_="foreignkey")
        batch.drop_column("run_pk")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("executions")
