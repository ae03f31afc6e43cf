"""One row per sync attempt: model_sync_runs.

Revision ID: 0002_model_sync_runs
Revises: 0001_ai_models
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002_model_sync_runs"
down_revision: str | None = "0001_ai_models"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_sync_runs",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_url", sa.Text),
        sa.Column("body_sha256", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("total", sa.Integer),
        sa.Column("created", sa.Integer),
        sa.Column("updated", sa.Integer),
        sa.Column("unchanged", sa.Integer),
        sa.Column("deactivated", sa.Integer),
        sa.Column("reactivated", sa.Integer),
        sa.Column("failed", sa.Integer),
        sa.Column("skipped", JSONB),
        sa.CheckConstraint("status IN ('success', 'failed')", name="model_sync_runs_status_check"),
    )
    op.create_index(
        "model_sync_runs_source_finished_idx", "model_sync_runs", ["source", "finished_at"]
    )


def downgrade() -> None:
    op.drop_table("model_sync_runs")
