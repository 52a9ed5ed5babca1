"""federation

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:59:32
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "federated_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(length=128), nullable=False),
        sa.Column("workflow", sa.String(length=128), nullable=False),
        sa.Column("definition_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column(
            "sites",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("finished_rounds", sa.Integer(), nullable=False),
        sa.Column("min_sites", sa.Integer(), nullable=False),
        sa.Column("site_timeout", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("global_key", sa.String(length=1024), nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "history",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.String(length=4096), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("federated_runs", schema=None) as batch_op:
        batch_op.create_index("ix_federated_runs_state", ["state"], unique=False)

    op.create_table(
        "federation_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_table(
        "federation_peers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("verify_tls", sa.Boolean(), nullable=False),
        sa.Column("pinned_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "datasets",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "federation_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow", sa.String(length=128), nullable=False),
        sa.Column("definition_hash", sa.String(length=64), nullable=False),
        sa.Column("approval", sa.String(length=16), nullable=False),
        sa.Column("max_output_bytes", sa.BigInteger(), nullable=False),
        sa.Column("allow_pixel_data", sa.Boolean(), nullable=False),
        sa.Column("share_logs", sa.Boolean(), nullable=False),
        sa.Column("approved_by", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow"),
    )
    op.create_table(
        "federated_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.String(length=4096), nullable=False),
        sa.Column("input_key", sa.String(length=1024), nullable=False),
        sa.Column(
            "outputs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("logs_requested", sa.Boolean(), nullable=False),
        sa.Column("logs", sa.Text(), nullable=False),
        sa.Column("received_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["run_pk"], ["federated_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_pk", "round", "site"),
    )
    with op.batch_alter_table("federated_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_federated_jobs_site_state", ["site", "state"], unique=False)

    op.create_table(
        "federation_exposures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("project_pk", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_pk"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("project_pk", "dataset"),
    )
    op.create_table(
        "site_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("orchestrator", sa.String(length=64), nullable=False),
        sa.Column("federated_run", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("workflow", sa.String(length=128), nullable=False),
        sa.Column("definition_hash", sa.String(length=64), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("requester", sa.String(length=255), nullable=False),
        sa.Column(
            "outputs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("has_input", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("reported", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=4096), nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=255), nullable=False),
        sa.Column("uploaded_bytes", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("site_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_site_jobs_state", ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("site_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_site_jobs_state")

    op.drop_table("site_jobs")
    op.drop_table("federation_exposures")
    with op.batch_alter_table("federated_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_federated_jobs_site_state")

    op.drop_table("federated_jobs")
    op.drop_table("federation_policies")
    op.drop_table("federation_peers")
    op.drop_table("federation_nonces")
    with op.batch_alter_table("federated_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_federated_runs_state")

    op.drop_table("federated_runs")
