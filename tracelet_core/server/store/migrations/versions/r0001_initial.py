"""The first schema: experiments, runs, params, tags, metric points, latest metrics, ingested batches.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _run_fk() -> sa.Column[str]:
    return sa.Column("run_id", sa.String(128), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False, unique=True),
        sa.Column("created", sa.Float(), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("experiments.id"), nullable=False, index=True),
        sa.Column("name", sa.String(500)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.Float(), nullable=False, index=True),
        sa.Column("end_time", sa.Float()),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("git", sa.JSON(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("deliveries", sa.JSON(), nullable=False),
        sa.Column("deleted_at", sa.Float()),
    )
    for table in ("params", "tags"):
        op.create_table(
            table,
            _run_fk(),
            sa.Column("key", sa.String(500), primary_key=True),
            sa.Column("value", sa.Text(), nullable=False),
        )
    op.create_table(
        "metric_points",
        sa.Column("id", _BIG, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(128), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("step", sa.BigInteger()),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("value", sa.Float()),
    )
    op.create_index("ix_points_history", "metric_points", ["run_id", "key", "step"])
    op.create_table(
        "latest_metrics",
        _run_fk(),
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("step", sa.BigInteger()),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "ingested_batches",
        _run_fk(),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("received", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in ("ingested_batches", "latest_metrics", "metric_points", "tags", "params", "runs", "experiments"):
        op.drop_table(table)
