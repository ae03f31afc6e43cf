"""Every sync requested through the HTTP API: who, when, what came of it, which run.

Revision ID: 0005_api_sync_requests
Revises: 0004_served_models_never_lost
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_api_sync_requests"
down_revision: str | None = "0004_served_models_never_lost"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_sync_requests",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("subject", sa.Text),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("run_id", sa.Text),
    )
    op.create_index("api_sync_requests_time_idx", "api_sync_requests", ["requested_at"])


def downgrade() -> None:
    op.drop_table("api_sync_requests")
