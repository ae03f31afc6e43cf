"""More sources, one catalog: price roles, user-owned aliases, the cross-source comparison.

Revision ID: 0006_sources_side_by_side
Revises: 0005_api_sync_requests
Create Date: 2026-12-01

- ``ai_models.price_role``: whose price a row carries (``gateway``, ``list`` — the model
  provider's own — or ``reseller``); existing rows are Vercel gateway rows.
- ``model_aliases``: user-owned; maps a (source, model_id) to the canonical id of your choice,
  overriding the rules. No sync writes it.
- ``ai_model_price_comparison``: per canonical model, base price field and source, the price
  and the spread across sources, for models priced by two or more sources.
- ``model_sync_runs.corroborated``: implausible moves accepted because another source showed
  the same new price.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006_sources_side_by_side"
down_revision: str | None = "0005_api_sync_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Default tolerance; a session may set model_sync.price_tolerance (e.g. SET ... = '0.01').
COMPARISON_VIEW = """
CREATE VIEW ai_model_price_comparison AS
WITH priced AS (
    SELECT m.source,
           coalesce(a.canonical_model_id, m.canonical_model_id) AS canonical_model_id,
           f.price_field, f.price
    FROM ai_models m
    LEFT JOIN model_aliases a ON a.source = m.source AND a.model_id = m.model_id
    CROSS JOIN LATERAL (VALUES ('input', m.cost_per_1m_input),
                               ('output', m.cost_per_1m_output),
                               ('cache_read', m.cost_per_1m_cache_read),
                               ('cache_write', m.cost_per_1m_cache_write))
        AS f(price_field, price)
    WHERE m.is_active AND m.price_role IN ('gateway', 'list') AND f.price IS NOT NULL
),
per_source AS (
    SELECT canonical_model_id, price_field, source, min(price) AS price_per_1m
    FROM priced GROUP BY canonical_model_id, price_field, source
),
spread AS (
    SELECT canonical_model_id, price_field, count(*) AS sources,
           min(price_per_1m) AS lowest, max(price_per_1m) AS highest
    FROM per_source GROUP BY canonical_model_id, price_field
)
SELECT p.canonical_model_id, p.price_field, p.source, p.price_per_1m,
       CASE WHEN s.lowest > 0 THEN s.highest / s.lowest - 1 END AS spread,
       CASE WHEN s.lowest > 0
            THEN s.highest / s.lowest - 1 > coalesce(
                nullif(current_setting('model_sync.price_tolerance', true), '')::numeric, 0.005)
            ELSE s.highest > s.lowest END AS disagrees
FROM per_source p
JOIN spread s USING (canonical_model_id, price_field)
WHERE s.sources >= 2
"""


def upgrade() -> None:
    op.add_column("ai_models", sa.Column("price_role", sa.Text))
    op.execute("UPDATE ai_models SET price_role = 'gateway'")
    op.create_table(
        "model_aliases",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("model_id", sa.Text, primary_key=True),
        sa.Column("canonical_model_id", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.add_column("model_sync_runs", sa.Column("corroborated", JSONB))
    op.execute(COMPARISON_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW ai_model_price_comparison")
    op.drop_column("model_sync_runs", "corroborated")
    op.drop_table("model_aliases")
    op.drop_column("ai_models", "price_role")
