"""Served models never lost: stale marks, schema drift, every price queryable, response archive.

Revision ID: 0004_served_models_never_lost
Revises: 0003_history_and_change_feed
Create Date: 2026-12-01

- ``ai_models``: ``canonical_model_id`` (one identity across sources), ``stale_since`` and
  ``stale_reason`` (a served value could not be read; the row keeps its last valid values).
- ``model_sync_runs``: stale count and models, the response's schema profile and drift, the
  transform version, and whether the body was unchanged.
- ``ai_model_changes``: change types ``stale`` and ``recovered``.
- ``ai_model_price_points(pricing)``: every price found anywhere in a pricing object, with its
  path, exact amount and the qualifiers beside it; the ``ai_model_prices`` view over the
  catalog and ``ai_model_prices_at(source, model_id, at)`` over the history.
- ``response_archive`` / ``response_captures``: every distinct response body, compressed, once.

Existing rows get their canonical id from the Vercel rule (``provider/model`` lowercased, the
provider alias unified) — the only source synced before this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004_served_models_never_lost"
down_revision: str | None = "0003_history_and_change_feed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CHANGE_TYPES = (
    "created",
    "deactivated",
    "reactivated",
    "price_changed",
    "tiers_changed",
    "capabilities_changed",
    "limits_changed",
    "deprecated",
)
CHANGE_TYPES = (*OLD_CHANGE_TYPES, "stale", "recovered")
PROVIDER_ALIASES = {
    "x-ai": "xai",
    "z-ai": "zai",
    "zhipuai": "zai",
    "meta-llama": "meta",
    "mistralai": "mistral",
    "qwen": "alibaba",
    "moonshot": "moonshotai",
    "gemini": "google",
    "vertex_ai": "google",
    "amazon-nova": "amazon",
    "voyageai": "voyage",
}

# Frozen copies of the rules in model_sync/pricing.py (PRICE_TEXT, qualifier keys); a test
# checks that this SQL and the Python twin find the same price points in every real response.
PRICE_POINT_FUNCTIONS = r"""
CREATE FUNCTION ai_model_price_children(p_path text, p_value jsonb)
RETURNS TABLE (path text, key text, value jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN p_path = '' THEN e.key ELSE p_path || '.' || e.key END, e.key, e.value
    FROM jsonb_each(CASE WHEN jsonb_typeof(p_value) = 'object' THEN p_value
                         ELSE '{}'::jsonb END) AS e
    UNION ALL
    SELECT p_path || '[' || (a.position - 1) || ']', NULL, a.value
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_value) = 'array' THEN p_value
                                   ELSE '[]'::jsonb END) WITH ORDINALITY AS a(value, position)
$fn$;

-- A member that describes its neighbours (a size, a band's bounds) rather than costing money.
CREATE FUNCTION ai_model_price_is_qualifier_key(p_key text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT p_key IS NOT NULL
       AND p_key !~* '(cost|price)'
       AND (p_key ~* '^(min|max)(_|$)'
            OR p_key ~* '_tokens$'
            OR lower(p_key) IN ('size', 'quality', 'resolution', 'mode', 'width', 'height',
                                'duration', 'seconds', 'unit', 'currency', 'region', 'tier',
                                'audio', 'name', 'type', 'description'))
$fn$;

CREATE FUNCTION ai_model_price_points(p_pricing jsonb)
RETURNS TABLE (path text, amount numeric, qualifiers jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
WITH RECURSIVE containers(path, value) AS (
    SELECT ''::text, p_pricing WHERE jsonb_typeof(p_pricing) IN ('object', 'array')
    UNION ALL
    SELECT child.path, child.value
    FROM containers c
    CROSS JOIN LATERAL ai_model_price_children(c.path, c.value) AS child
    WHERE jsonb_typeof(child.value) IN ('object', 'array')
),
members AS (
    SELECT c.path AS parent_path, m.path, m.key, m.value,
           (jsonb_typeof(m.value) = 'number'
            OR (jsonb_typeof(m.value) = 'string'
                AND m.value #>> '{}' ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$'))
           AND NOT ai_model_price_is_qualifier_key(m.key) AS numeric
    FROM containers c
    CROSS JOIN LATERAL ai_model_price_children(c.path, c.value) AS m
    WHERE jsonb_typeof(m.value) NOT IN ('object', 'array')
),
priced AS (
    SELECT parent_path, path, CASE WHEN numeric THEN (value #>> '{}')::numeric END AS amount
    FROM members
)
SELECT p.path, p.amount,
       coalesce((SELECT jsonb_object_agg(q.key, q.value ORDER BY q.key)
                 FROM members q
                 WHERE q.parent_path = p.parent_path AND q.key IS NOT NULL AND NOT q.numeric),
                '{}'::jsonb)
FROM priced p
WHERE p.amount >= 0
$fn$;

CREATE VIEW ai_model_prices AS
SELECT m.source, m.model_id, m.canonical_model_id, m.is_active, p.path, p.amount, p.qualifiers
FROM ai_models m
CROSS JOIN LATERAL ai_model_price_points(m.pricing) AS p;

CREATE FUNCTION ai_model_prices_at(p_source text, p_model_id text, p_at timestamptz)
RETURNS TABLE (path text, amount numeric, qualifiers jsonb, valid_from timestamptz,
               valid_to timestamptz, version_id bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT p.path, p.amount, p.qualifiers, v.valid_from, v.valid_to, v.id
    FROM ai_model_versions v
    CROSS JOIN LATERAL ai_model_price_points(v.pricing) AS p
    WHERE v.source = p_source AND v.model_id = p_model_id
      AND v.valid_from <= p_at AND (v.valid_to IS NULL OR v.valid_to > p_at)
$fn$;
"""


def _check(types: Sequence[str]) -> str:
    return "change_type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


def upgrade() -> None:
    op.add_column("ai_models", sa.Column("canonical_model_id", sa.Text))
    op.add_column("ai_models", sa.Column("stale_since", sa.DateTime(timezone=True)))
    op.add_column("ai_models", sa.Column("stale_reason", sa.Text))
    # The Vercel rule of model_sync/sources (frozen here): provider/model, lowercase, the
    # provider's alias unified, dots in the model name as dashes.
    aliases = " ".join(f"WHEN '{alias}' THEN '{name}'" for alias, name in PROVIDER_ALIASES.items())
    op.execute(
        f"""
        UPDATE ai_models SET canonical_model_id =
            CASE lower(split_part(model_id, '/', 1)) {aliases}
                 ELSE lower(split_part(model_id, '/', 1)) END
            || '/' || replace(lower(CASE WHEN position('/' IN model_id) > 0
                                         THEN substr(model_id, position('/' IN model_id) + 1)
                                         ELSE model_id END), '.', '-')
        """
    )
    op.create_index("ai_models_canonical_idx", "ai_models", ["canonical_model_id"])

    op.add_column("model_sync_runs", sa.Column("stale", sa.Integer))
    op.add_column("model_sync_runs", sa.Column("stale_models", JSONB))
    op.add_column("model_sync_runs", sa.Column("schema_profile", JSONB))
    op.add_column("model_sync_runs", sa.Column("schema_drift", JSONB))
    op.add_column("model_sync_runs", sa.Column("transform_version", sa.Text))
    op.add_column(
        "model_sync_runs",
        sa.Column("unchanged_body", sa.Boolean, nullable=False, server_default=sa.false()),
    )

    op.drop_constraint("ai_model_changes_type_check", "ai_model_changes", type_="check")
    op.create_check_constraint(
        "ai_model_changes_type_check", "ai_model_changes", _check(CHANGE_TYPES)
    )

    op.create_table(
        "response_archive",
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("first_fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("byte_count", sa.BigInteger, nullable=False),
        sa.Column("compression", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "response_captures",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, sa.ForeignKey("response_archive.sha256"), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "response_captures_source_time_idx", "response_captures", ["source", "fetched_at"]
    )
    op.execute(PRICE_POINT_FUNCTIONS)


def downgrade() -> None:
    op.execute("DROP FUNCTION ai_model_prices_at(text, text, timestamptz)")
    op.execute("DROP VIEW ai_model_prices")
    op.execute("DROP FUNCTION ai_model_price_points(jsonb)")
    op.execute("DROP FUNCTION ai_model_price_is_qualifier_key(text)")
    op.execute("DROP FUNCTION ai_model_price_children(text, jsonb)")
    op.drop_table("response_captures")
    op.drop_table("response_archive")
    op.execute("DELETE FROM ai_model_changes WHERE change_type IN ('stale', 'recovered')")
    op.drop_constraint("ai_model_changes_type_check", "ai_model_changes", type_="check")
    op.create_check_constraint(
        "ai_model_changes_type_check", "ai_model_changes", _check(OLD_CHANGE_TYPES)
    )
    for column in (
        "unchanged_body",
        "transform_version",
        "schema_drift",
        "schema_profile",
        "stale_models",
        "stale",
    ):
        op.drop_column("model_sync_runs", column)
    op.drop_index("ai_models_canonical_idx", "ai_models")
    for column in ("stale_reason", "stale_since", "canonical_model_id"):
        op.drop_column("ai_models", column)
