"""The exact cost of any usage at any time: ai_source_meters and ai_model_cost().

Revision ID: 0007_cost_of_usage
Revises: 0006_sources_side_by_side
Create Date: 2026-12-01

``ai_model_cost(source, model_id, at, usage jsonb) returns jsonb``: the cost of one usage
record at the prices of the model's version in force at ``at`` — the SQL twin of
``model_sync.costing.cost_of`` (same rule, tested against each other). ``ai_source_meters``
says which price points price the meters beyond tokens, per source (written by the syncs
from each source's declaration).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_cost_of_usage"
down_revision: str | None = "0006_sources_side_by_side"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COST_FUNCTION = r"""
CREATE FUNCTION ai_model_cost(p_source text, p_model_id text, p_at timestamptz, p_usage jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v ai_model_versions;
    prompt numeric;
    meters jsonb := '{}'::jsonb;
    unpriced text[] := '{}';
    cnt numeric;
    per_token numeric;
    token record;
    rule ai_source_meters;
    amounts numeric[];
    other_meter text;
    unknown text;
BEGIN
    SELECT key INTO unknown FROM jsonb_object_keys(coalesce(p_usage, '{}'::jsonb)) AS key
    WHERE key NOT IN ('input_tokens', 'output_tokens', 'cache_read_tokens',
                      'cache_write_tokens', 'web_search_calls', 'images', 'video_seconds',
                      'audio_seconds', 'characters', 'qualifiers')
    LIMIT 1;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown usage field %', unknown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v FROM ai_model_versions
    WHERE source = p_source AND model_id = p_model_id
      AND valid_from <= p_at AND (valid_to IS NULL OR valid_to > p_at);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no price of % model % at %: the catalog holds no version of it then',
            p_source, p_model_id, p_at USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT v.is_active THEN
        RAISE EXCEPTION 'model % of % was not served at % (inactive from %)',
            p_model_id, p_source, p_at, v.valid_from USING ERRCODE = 'no_data_found';
    END IF;
    prompt := coalesce((p_usage->>'input_tokens')::numeric, 0)
            + coalesce((p_usage->>'cache_read_tokens')::numeric, 0)
            + coalesce((p_usage->>'cache_write_tokens')::numeric, 0);
    FOR token IN
        SELECT * FROM (VALUES
            (1, 'input_tokens', v.cost_per_1m_input, v.input_tiers),
            (2, 'output_tokens', v.cost_per_1m_output, v.output_tiers),
            (3, 'cache_read_tokens', v.cost_per_1m_cache_read, v.input_cache_read_tiers),
            (4, 'cache_write_tokens', v.cost_per_1m_cache_write, v.input_cache_write_tiers)
        ) AS t(position, meter, price, tiers)
        ORDER BY position
    LOOP
        cnt := coalesce((p_usage->>token.meter)::numeric, 0);
        IF cnt < 0 OR cnt <> trunc(cnt) THEN
            RAISE EXCEPTION '% must be a whole number of tokens, not negative', token.meter
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        CONTINUE WHEN cnt = 0;
        IF token.tiers IS NOT NULL AND jsonb_array_length(token.tiers) > 0 THEN
            SELECT (band->>'cost')::numeric INTO per_token
            FROM jsonb_array_elements(token.tiers) WITH ORDINALITY AS e(band, position)
            WHERE coalesce((band->>'min')::numeric, 0) <= prompt
              AND (band->'max' IS NULL OR prompt < (band->>'max')::numeric)
            ORDER BY position
            LIMIT 1;
            IF NOT FOUND THEN
                unpriced := unpriced || token.meter;
                CONTINUE;
            END IF;
            meters := meters || jsonb_build_object(token.meter, trim_scale(cnt * per_token));
        ELSIF token.price IS NOT NULL THEN
            -- per million tokens: multiplied by 10^-6, exact (a division would round)
            meters := meters || jsonb_build_object(
                token.meter, trim_scale(cnt * token.price * 0.000001));
        ELSE
            unpriced := unpriced || token.meter;
        END IF;
    END LOOP;
    FOREACH other_meter IN ARRAY ARRAY['web_search_calls', 'images', 'video_seconds',
                                       'audio_seconds', 'characters']
    LOOP
        cnt := coalesce((p_usage->>other_meter)::numeric, 0);
        IF cnt < 0 THEN
            RAISE EXCEPTION '% is negative', other_meter USING ERRCODE = 'invalid_parameter_value';
        END IF;
        CONTINUE WHEN cnt = 0;
        SELECT * INTO rule FROM ai_source_meters m
        WHERE m.source = p_source AND m.meter = other_meter;
        IF NOT FOUND THEN
            unpriced := unpriced || other_meter;
            CONTINUE;
        END IF;
        SELECT array_agg(DISTINCT p.amount) INTO amounts
        FROM ai_model_price_points(v.pricing) AS p
        WHERE p.path ~ rule.path_pattern
          AND NOT EXISTS (
              SELECT 1 FROM jsonb_each(coalesce(p_usage->'qualifiers', '{}'::jsonb)) AS q
              WHERE p.qualifiers ? q.key AND p.qualifiers->q.key <> q.value);
        IF coalesce(array_length(amounts, 1), 0) <> 1 THEN
            unpriced := unpriced || other_meter;
            CONTINUE;
        END IF;
        meters := meters || jsonb_build_object(
            other_meter, trim_scale(cnt * amounts[1] * power(10::numeric, -rule.unit_exponent)));
    END LOOP;
    RETURN jsonb_build_object(
        'total', (SELECT trim_scale(coalesce(sum(value::numeric), 0))
                  FROM jsonb_each_text(meters)),
        'meters', meters,
        'version_id', v.id,
        'unpriced', to_jsonb(unpriced));
END
$fn$;

-- For queries over many records (re-pricing a usage log): an error is the answer's
-- {"error": …} instead of aborting the whole statement.
CREATE FUNCTION ai_model_cost_or_error(p_source text, p_model_id text, p_at timestamptz,
                                       p_usage jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN ai_model_cost(p_source, p_model_id, p_at, p_usage);
EXCEPTION WHEN no_data_found OR invalid_parameter_value OR invalid_text_representation
               OR numeric_value_out_of_range THEN
    RETURN jsonb_build_object('error', SQLERRM);
END
$fn$;
"""


def upgrade() -> None:
    op.create_table(
        "ai_source_meters",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("meter", sa.Text, primary_key=True),
        sa.Column("path_pattern", sa.Text, nullable=False),
        sa.Column("unit_exponent", sa.SmallInteger, nullable=False, server_default=sa.text("0")),
    )
    op.execute(COST_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION ai_model_cost_or_error(text, text, timestamptz, jsonb)")
    op.execute("DROP FUNCTION ai_model_cost(text, text, timestamptz, jsonb)")
    op.drop_table("ai_source_meters")
