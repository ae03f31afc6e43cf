"""The model catalog: ai_models.

Revision ID: 0001_ai_models
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001_ai_models"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ai_models",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("model_id", sa.Text, nullable=False),
        sa.Column("model_name", sa.Text),
        sa.Column("provider", sa.Text),
        sa.Column("owned_by", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("model_type", sa.Text),
        sa.Column("context_window", sa.BigInteger),
        sa.Column("max_output_tokens", sa.BigInteger),
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.Column("gateway_created_at", sa.DateTime(timezone=True)),
        sa.Column("deprecated_at", sa.DateTime(timezone=True)),
        sa.Column(
            "capabilities", sa.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column(
            "supports_function_calling", sa.Boolean, nullable=False, server_default=sa.false()
        ),
        sa.Column("supports_vision", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("supports_reasoning", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("cost_per_1m_input", sa.Numeric),
        sa.Column("cost_per_1m_output", sa.Numeric),
        sa.Column("cost_per_1m_cache_read", sa.Numeric),
        sa.Column("cost_per_1m_cache_write", sa.Numeric),
        sa.Column("web_search_cost", sa.Numeric),
        sa.Column("input_tiers", JSONB),
        sa.Column("output_tiers", JSONB),
        sa.Column("input_cache_read_tiers", JSONB),
        sa.Column("input_cache_write_tiers", JSONB),
        sa.Column("cost_bucket", sa.Text),
        sa.Column("pricing", JSONB),
        sa.Column("raw", JSONB, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("deactivated_at", sa.DateTime(timezone=True)),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("last_changed_run_id", sa.Text),
        sa.Column("is_recommended", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.UniqueConstraint("source", "model_id", name="ai_models_source_model_id_key"),
    )
    # Applications mostly read "active models of provider X, cheapest first".
    op.create_index("ai_models_active_provider_idx", "ai_models", ["is_active", "provider"])


def downgrade() -> None:
    op.drop_table("ai_models")
