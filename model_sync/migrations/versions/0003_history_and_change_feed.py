"""Price and capability history, per-run change report, webhook outbox.

Revision ID: 0003_history_and_change_feed
Revises: 0002_model_sync_runs
Create Date: 2026-11-27

Existing catalogs are upgraded in place: every current ai_models row gets an opening version
(valid from its last change), so history starts from what the catalog already knows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0003_history_and_change_feed"
down_revision: str | None = "0002_model_sync_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRACKED = (
    "is_active, model_type, context_window, max_output_tokens, capabilities, deprecated_at, "
    "cost_per_1m_input, cost_per_1m_output, cost_per_1m_cache_read, cost_per_1m_cache_write, "
    "web_search_cost, input_tiers, output_tiers, input_cache_read_tiers, "
    "input_cache_write_tiers, pricing"
)
CHANGE_TYPES = (
    "created",
    "deactivated",
    "reactivated",
    "price_changed",
    "tiers_changed",
    "capabilities_changed",
    "limits_changed",
    "deprecated",
)


def upgrade() -> None:
    op.add_column("model_sync_runs", sa.Column("effective_at", sa.DateTime(timezone=True)))
    op.add_column("model_sync_runs", sa.Column("accepted_by", sa.Text))
    op.add_column("model_sync_runs", sa.Column("accept_reason", sa.Text))
    op.add_column("model_sync_runs", sa.Column("anomalies", JSONB))
    op.add_column("model_sync_runs", sa.Column("warnings", JSONB))

    op.create_table(
        "ai_model_versions",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("model_id", sa.Text, nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.Column("opened_by_sync", sa.BigInteger, sa.ForeignKey("model_sync_runs.id")),
        sa.Column("closed_by_sync", sa.BigInteger, sa.ForeignKey("model_sync_runs.id")),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("model_type", sa.Text),
        sa.Column("context_window", sa.BigInteger),
        sa.Column("max_output_tokens", sa.BigInteger),
        sa.Column("capabilities", sa.ARRAY(sa.Text), nullable=False),
        sa.Column("deprecated_at", sa.DateTime(timezone=True)),
        sa.Column("cost_per_1m_input", sa.Numeric),
        sa.Column("cost_per_1m_output", sa.Numeric),
        sa.Column("cost_per_1m_cache_read", sa.Numeric),
        sa.Column("cost_per_1m_cache_write", sa.Numeric),
        sa.Column("web_search_cost", sa.Numeric),
        sa.Column("input_tiers", JSONB),
        sa.Column("output_tiers", JSONB),
        sa.Column("input_cache_read_tiers", JSONB),
        sa.Column("input_cache_write_tiers", JSONB),
        sa.Column("pricing", JSONB),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from", name="ai_model_versions_period_check"
        ),
    )
    op.create_index(
        "ai_model_versions_current_key",
        "ai_model_versions",
        ["source", "model_id"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index(
        "ai_model_versions_model_period_idx",
        "ai_model_versions",
        ["source", "model_id", "valid_from"],
    )
    op.execute(
        f"INSERT INTO ai_model_versions (source, model_id, valid_from, {TRACKED}) "
        f"SELECT source, model_id, updated_at, {TRACKED} FROM ai_models"
    )

    op.create_table(
        "ai_model_changes",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("sync_id", sa.BigInteger, sa.ForeignKey("model_sync_runs.id"), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("model_id", sa.Text, nullable=False),
        sa.Column("change_type", sa.Text, nullable=False),
        sa.Column("field", sa.Text),
        sa.Column("old_value", JSONB),
        sa.Column("new_value", JSONB),
        sa.Column("relative_change", sa.Numeric),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "change_type IN (" + ", ".join(f"'{t}'" for t in CHANGE_TYPES) + ")",
            name="ai_model_changes_type_check",
        ),
    )
    op.create_index("ai_model_changes_sync_idx", "ai_model_changes", ["sync_id"])
    op.create_index(
        "ai_model_changes_model_idx", "ai_model_changes", ["source", "model_id", "detected_at"]
    )

    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "delivery_id",
            UUID(as_uuid=True),
            nullable=False,
            unique=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column("sync_id", sa.BigInteger, sa.ForeignKey("model_sync_runs.id"), nullable=False),
        sa.Column("subscriber_url", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "webhook_outbox_pending_idx",
        "webhook_outbox",
        ["next_attempt_at"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )

    # "What did model X cost at time T": the version whose period contains T.
    op.execute(
        """
        CREATE FUNCTION ai_model_price_at(
            p_model_id text, p_at timestamptz, p_source text DEFAULT 'vercel'
        ) RETURNS SETOF ai_model_versions
        LANGUAGE sql STABLE AS $$
            SELECT * FROM ai_model_versions
            WHERE source = p_source AND model_id = p_model_id
              AND valid_from <= p_at AND (valid_to IS NULL OR valid_to > p_at)
        $$
        """
    )
    # Every price change: consecutive versions of a model whose price fields differ.
    op.execute(
        """
        CREATE VIEW ai_model_price_changes AS
        WITH ordered AS (
            SELECT v.*,
                   lag(v.id) OVER w AS previous_id
            FROM ai_model_versions v
            WINDOW w AS (PARTITION BY v.source, v.model_id ORDER BY v.valid_from, v.id)
        )
        SELECT cur.source,
               cur.model_id,
               m.provider,
               cur.valid_from AS changed_at,
               cur.opened_by_sync AS sync_id,
               f.field,
               f.old_value,
               f.new_value,
               CASE WHEN f.old_value > 0 THEN (f.new_value - f.old_value) / f.old_value END
                   AS relative_change
        FROM ordered cur
        JOIN ai_model_versions prev ON prev.id = cur.previous_id
        JOIN ai_models m ON m.source = cur.source AND m.model_id = cur.model_id
        CROSS JOIN LATERAL (VALUES
            ('cost_per_1m_input', prev.cost_per_1m_input, cur.cost_per_1m_input),
            ('cost_per_1m_output', prev.cost_per_1m_output, cur.cost_per_1m_output),
            ('cost_per_1m_cache_read', prev.cost_per_1m_cache_read, cur.cost_per_1m_cache_read),
            ('cost_per_1m_cache_write', prev.cost_per_1m_cache_write,
             cur.cost_per_1m_cache_write),
            ('web_search_cost', prev.web_search_cost, cur.web_search_cost)
        ) AS f(field, old_value, new_value)
        WHERE f.old_value IS DISTINCT FROM f.new_value
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW ai_model_price_changes")
    op.execute("DROP FUNCTION ai_model_price_at(text, timestamptz, text)")
    op.drop_table("webhook_outbox")
    op.drop_table("ai_model_changes")
    op.drop_table("ai_model_versions")
    for column in ("warnings", "anomalies", "accept_reason", "accepted_by", "effective_at"):
        op.drop_column("model_sync_runs", column)
