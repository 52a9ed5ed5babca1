"""catalog search index and tags

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 06:50:00.000000

``series_attributes`` is the flattened, typed attribute table the catalog searches and counts on;
``series_text`` the free-text document of each series, indexed by SQLite FTS5 (an external
content table kept in step by triggers) or by a PostgreSQL GIN index over its tsvector.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE series_text_fts USING fts5("
    "body, content='series_text', content_rowid='series_pk', "
    'tokenize="unicode61 remove_diacritics 2")',
    "CREATE TRIGGER series_text_ai AFTER INSERT ON series_text BEGIN "
    "INSERT INTO series_text_fts(rowid, body) VALUES (new.series_pk, new.body); END",
    "CREATE TRIGGER series_text_ad AFTER DELETE ON series_text BEGIN "
    "INSERT INTO series_text_fts(series_text_fts, rowid, body) "
    "VALUES ('delete', old.series_pk, old.body); END",
    "CREATE TRIGGER series_text_au AFTER UPDATE ON series_text BEGIN "
    "INSERT INTO series_text_fts(series_text_fts, rowid, body) "
    "VALUES ('delete', old.series_pk, old.body); "
    "INSERT INTO series_text_fts(rowid, body) VALUES (new.series_pk, new.body); END",
)


def upgrade() -> None:
    op.create_table(
        "series_attributes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("series_pk", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=255), nullable=False),
        sa.Column("text_value", sa.String(length=1024), nullable=False),
        sa.Column("number_value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["series_pk"], ["series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("series_attributes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_series_attributes_text", ["field", "text_value", "series_pk"], unique=False
        )
        batch_op.create_index(
            "ix_series_attributes_number", ["field", "number_value", "series_pk"], unique=False
        )
        batch_op.create_index("ix_series_attributes_series", ["series_pk", "field"], unique=False)

    op.create_table(
        "series_text",
        sa.Column("series_pk", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["series_pk"], ["series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("series_pk"),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute(
            "CREATE INDEX ix_series_text_tsv ON series_text USING gin (to_tsvector('simple', body))"
        )
        # Values depend on their field (Modality = 'CT' is common, PatientID = 'CT' is not):
        # without these, the planner multiplies the two columns' frequencies and underestimates.
        for name, column in (("text", "text_value"), ("number", "number_value")):
            op.execute(
                f"CREATE STATISTICS st_series_attributes_{name} (mcv, dependencies) "
                f"ON field, {column} FROM series_attributes"
            )

    op.create_table(
        "series_tags",
        sa.Column("project_pk", sa.Integer(), nullable=False),
        sa.Column("series_pk", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["project_pk"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["series_pk"], ["series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_pk", "series_pk", "tag"),
    )
    with op.batch_alter_table("series_tags", schema=None) as batch_op:
        batch_op.create_index("ix_series_tags_project_tag", ["project_pk", "tag"], unique=False)
        batch_op.create_index(batch_op.f("ix_series_tags_series_pk"), ["series_pk"], unique=False)


def downgrade() -> None:
    op.drop_table("series_tags")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE series_text_fts")
    op.drop_table("series_text")
    op.drop_table("series_attributes")
