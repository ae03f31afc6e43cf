"""The sync's SQL statements, built once from the table definitions.

Each statement works on whole sets (the staged response, the diff), never on one model at a
time, so a sync costs a handful of round trips whatever the catalog's size. See
``model_sync.store.sync`` for the order they run in and why.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import JSONB

from model_sync.store.tables import TRACKED_COLUMNS, USER_OWNED_COLUMNS, ai_models
from model_sync.transform import FRAME_COLUMNS, MARK_DTYPES

# Columns the sync writes from the frame. The key columns identify a row; the others are
# compared to decide whether a stored value really changed.
KEY_COLUMNS = ("source", "model_id")
CONTENT_COLUMNS = tuple(column for column in FRAME_COLUMNS if column not in KEY_COLUMNS)
JSON_COLUMNS = frozenset(
    column.name for column in ai_models.columns if isinstance(column.type, JSONB)
)
assert set(FRAME_COLUMNS) <= set(ai_models.columns.keys()), "frame and table disagree"
assert not set(FRAME_COLUMNS) & set(USER_OWNED_COLUMNS), "the sync must never write user columns"
assert set(TRACKED_COLUMNS) - {"is_active"} <= set(CONTENT_COLUMNS)

STAGING_TABLE = "ai_models_staged"
# The staged row: catalog columns, then the per-row marks (why a value could not be read,
# which columns keep their stored value).
STAGED_COLUMNS = (*FRAME_COLUMNS, *MARK_DTYPES)
PRICE_COLUMNS = (
    "cost_per_1m_input",
    "cost_per_1m_output",
    "cost_per_1m_cache_read",
    "cost_per_1m_cache_write",
    "web_search_cost",
)
TIER_COLUMNS = ("input_tiers", "output_tiers", "input_cache_read_tiers", "input_cache_write_tiers")
LIMIT_COLUMNS = ("context_window", "max_output_tokens")
EVENT_TYPE = "catalog.changed"


def _row(alias: str, columns: Sequence[str]) -> str:
    return "(" + ", ".join(f"{alias}.{column}" for column in columns) + ")"


def _list(alias: str, columns: Sequence[str]) -> str:
    return ", ".join(f"{alias}.{column}" for column in columns)


CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE {STAGING_TABLE} ON COMMIT DROP AS "
    f"SELECT {', '.join(FRAME_COLUMNS)}, stale_reason, "
    f"CAST(NULL AS text[]) AS kept_columns FROM ai_models WITH NO DATA"
)
COPY_STAGING = f"COPY {STAGING_TABLE} ({', '.join(STAGED_COLUMNS)}) FROM STDIN"
INDEX_STAGING = f"ALTER TABLE {STAGING_TABLE} ADD PRIMARY KEY (source, model_id)"
# Join planning needs row counts and key statistics, not the JSON columns' (which would have
# to be read and detoasted).
ANALYZE_STAGING = f"ANALYZE {STAGING_TABLE} (source, model_id)"

# A served model whose fields could not be read keeps its stored row: staged as it is stored,
# it is present (never deactivated) and unchanged, and only its stale mark moves.
STAGE_STORED = f"""
INSERT INTO {STAGING_TABLE} ({", ".join(STAGED_COLUMNS)})
SELECT {_list("t", FRAME_COLUMNS)}, b.reason, '{{}}'::text[]
FROM ai_models t
JOIN jsonb_to_recordset(CAST(:broken AS jsonb)) AS b(model_id text, reason text)
    ON t.model_id = b.model_id
WHERE t.source = :source
"""

# A model with a broken optional field keeps that field's stored columns (it is new to the
# catalog when there are none: then the column stays empty, nothing is invented).
KEEP_STORED_COLUMNS = f"""
UPDATE {STAGING_TABLE} s SET
    {
    ", ".join(
        f"{c} = CASE WHEN '{c}' = ANY(s.kept_columns) THEN t.{c} ELSE s.{c} END"
        for c in CONTENT_COLUMNS
    )
}
FROM ai_models t
WHERE t.source = s.source AND t.model_id = s.model_id AND cardinality(s.kept_columns) > 0
"""

# Every staged model, and every active stored model, with what this sync does to it.
DIFF = f"""
CREATE TEMPORARY TABLE catalog_diff ON COMMIT DROP AS
SELECT coalesce(s.source, t.source) AS source,
       coalesce(s.model_id, t.model_id) AS model_id,
       CASE
           WHEN t.model_id IS NULL THEN 'created'
           WHEN s.model_id IS NULL THEN 'deactivated'
           WHEN NOT t.is_active THEN 'reactivated'
           WHEN {_row("t", CONTENT_COLUMNS)} IS DISTINCT FROM {_row("s", CONTENT_COLUMNS)}
               THEN 'updated'
           ELSE 'unchanged'
       END AS change
FROM {STAGING_TABLE} s
FULL JOIN (SELECT * FROM ai_models WHERE source = :source) t
    ON t.source = s.source AND t.model_id = s.model_id
WHERE s.model_id IS NOT NULL OR t.is_active
"""

RECORD_CREATED = """
INSERT INTO catalog_diff (source, model_id, change)
SELECT :source, model_id, 'created'
FROM jsonb_array_elements_text(CAST(:ids AS jsonb)) AS model_id
"""


def _field_change(change_type: str, column: str, *, price: bool = False) -> str:
    as_json = (
        f"to_jsonb(t.{column}::text), to_jsonb(s.{column}::text)"
        if price
        else (
            f"t.{column}, s.{column}"
            if column in JSON_COLUMNS
            else f"to_jsonb(t.{column}), to_jsonb(s.{column})"
        )
    )
    prices = f"t.{column}, s.{column}" if price else "NULL::numeric, NULL::numeric"
    return (
        f"('{change_type}', '{column}', {as_json}, {prices}, "
        f"t.{column} IS DISTINCT FROM s.{column})"
    )


_FIELD_CHANGES = ",\n        ".join(
    [_field_change("price_changed", c, price=True) for c in PRICE_COLUMNS]
    + [_field_change("tiers_changed", c) for c in TIER_COLUMNS]
    + [_field_change("capabilities_changed", "capabilities")]
    + [_field_change("limits_changed", c) for c in LIMIT_COLUMNS]
    + [_field_change("deprecated", "deprecated_at")]
)

# Field by field, what changed on models that stay (or come back). Prices travel as JSON
# strings so no consumer ever parses them as binary floats.
FIELD_DIFF = f"""
CREATE TEMPORARY TABLE field_diff ON COMMIT DROP AS
SELECT d.source, d.model_id, f.change_type, f.field, f.old_value, f.new_value,
       f.old_price, f.new_price
FROM catalog_diff d
JOIN {STAGING_TABLE} s ON s.source = d.source AND s.model_id = d.model_id
JOIN ai_models t ON t.source = d.source AND t.model_id = d.model_id
CROSS JOIN LATERAL (VALUES
        {_FIELD_CHANGES}
) AS f(change_type, field, old_value, new_value, old_price, new_price, differs)
WHERE d.change IN ('updated', 'reactivated') AND f.differs
"""

# Every other price in the served pricing object (image sizes, video seconds, regional
# prices, kinds nobody has seen yet), by path, as ai_model_price_points finds them. Paths whose
# top-level key a column already reports (input, input_tiers …) are left to that column.
PRICE_POINT_DIFF = f"""
INSERT INTO field_diff (source, model_id, change_type, field, old_value, new_value,
                        old_price, new_price)
SELECT d.source, d.model_id, 'price_changed', 'pricing.' || p.path,
       to_jsonb(p.old_amount::text), to_jsonb(p.new_amount::text), p.old_amount, p.new_amount
FROM catalog_diff d
JOIN {STAGING_TABLE} s ON s.source = d.source AND s.model_id = d.model_id
JOIN ai_models t ON t.source = d.source AND t.model_id = d.model_id
CROSS JOIN LATERAL (
    SELECT coalesce(n.path, o.path) AS path, o.amount AS old_amount, n.amount AS new_amount
    FROM ai_model_price_points(t.pricing) o
    FULL JOIN ai_model_price_points(s.pricing) n ON n.path = o.path
) p
WHERE d.change IN ('updated', 'reactivated')
  AND t.pricing IS DISTINCT FROM s.pricing
  AND p.old_amount IS DISTINCT FROM p.new_amount
  AND NOT substring(p.path FROM '^[^.[]+') = ANY(CAST(:column_paths AS text[]))
"""

# A model goes stale when a served value could not be read, recovers when it reads cleanly.
STALE_CHANGES = f"""
INSERT INTO field_diff (source, model_id, change_type, field, old_value, new_value,
                        old_price, new_price)
SELECT s.source, s.model_id,
       CASE WHEN s.stale_reason IS NULL THEN 'recovered' ELSE 'stale' END,
       NULL, to_jsonb(t.stale_reason), to_jsonb(s.stale_reason), NULL, NULL
FROM {STAGING_TABLE} s
JOIN ai_models t ON t.source = s.source AND t.model_id = s.model_id
WHERE t.stale_reason IS DISTINCT FROM s.stale_reason
"""

RECORD_CHANGES = """
INSERT INTO ai_model_changes
    (sync_id, source, model_id, change_type, field, old_value, new_value, relative_change,
     detected_at)
SELECT :sync_id, source, model_id, change, NULL, NULL, NULL, NULL, :as_of
FROM catalog_diff WHERE change IN ('created', 'deactivated', 'reactivated')
UNION ALL
SELECT :sync_id, source, model_id, change_type, field, old_value, new_value,
       CASE WHEN old_price > 0 AND new_price IS NOT NULL
            THEN round((new_price - old_price) / old_price, 6) END,
       :as_of
FROM field_diff
"""

# A model that is new and already stale (a broken optional field) says so after its
# ``created`` row. Run only when the new rows hold one: checked for every new model, the
# lookup cost a fifth of a second per 40,000 models.
RECORD_NEW_STALE = """
INSERT INTO ai_model_changes
    (sync_id, source, model_id, change_type, field, old_value, new_value, relative_change,
     detected_at)
SELECT :sync_id, :source, model_id, 'stale', NULL, NULL, to_jsonb(stale_reason), NULL, :as_of
FROM ai_models
WHERE source = :source AND stale_reason IS NOT NULL
  AND model_id IN (SELECT model_id FROM catalog_diff WHERE change = 'created')
"""

# Models the catalog already held whose values changed, or that came back. New models were
# written by their COPY; unchanged ones are never touched.
UPDATE_CHANGED = f"""
UPDATE ai_models t SET
    {", ".join(f"{column} = s.{column}" for column in CONTENT_COLUMNS)},
    is_active = true,
    deactivated_at = NULL,
    updated_at = :as_of,
    last_changed_run_id = :run_id
FROM {STAGING_TABLE} s
JOIN catalog_diff d ON d.source = s.source AND d.model_id = s.model_id
WHERE d.change IN ('updated', 'reactivated')
  AND t.source = s.source AND t.model_id = s.model_id
"""

# Only rows whose stale state moves are written: a repeated sync writes nothing.
UPDATE_STALE_MARKS = f"""
UPDATE ai_models t SET
    stale_reason = s.stale_reason,
    stale_since = CASE WHEN s.stale_reason IS NULL THEN NULL
                       ELSE coalesce(t.stale_since, :as_of) END
FROM {STAGING_TABLE} s
WHERE t.source = s.source AND t.model_id = s.model_id
  AND t.stale_reason IS DISTINCT FROM s.stale_reason
"""

MARK_NEW_STALE = """
UPDATE ai_models SET stale_since = :as_of
WHERE source = :source AND stale_reason IS NOT NULL AND stale_since IS NULL
"""

# A model no longer served is not stale any more: it is gone.
DEACTIVATE = """
UPDATE ai_models t
SET is_active = false, deactivated_at = :as_of, updated_at = :as_of, last_changed_run_id = :run_id,
    stale_since = NULL, stale_reason = NULL
FROM catalog_diff d
WHERE d.change = 'deactivated' AND t.source = d.source AND t.model_id = d.model_id
"""

# A model opens a version when a tracked attribute (or its active state) differs from its
# current version; unchanged models cannot differ, so only the diff's other rows are read.
VERSION_DIFF = f"""
CREATE TEMPORARY TABLE version_diff ON COMMIT DROP AS
SELECT t.source, t.model_id, v.id AS prior_id
FROM catalog_diff d
JOIN ai_models t ON t.source = d.source AND t.model_id = d.model_id
LEFT JOIN ai_model_versions v
    ON v.source = t.source AND v.model_id = t.model_id AND v.valid_to IS NULL
WHERE d.change <> 'unchanged'
  AND (v.id IS NULL OR {_row("t", TRACKED_COLUMNS)} IS DISTINCT FROM {_row("v", TRACKED_COLUMNS)})
"""

CLOSE_VERSIONS = """
UPDATE ai_model_versions v SET valid_to = :as_of, closed_by_sync = :sync_id
FROM version_diff c WHERE v.id = c.prior_id
"""

OPEN_VERSIONS = f"""
INSERT INTO ai_model_versions (source, model_id, valid_from, opened_by_sync,
                               {", ".join(TRACKED_COLUMNS)})
SELECT t.source, t.model_id, :as_of, :sync_id, {_list("t", TRACKED_COLUMNS)}
FROM version_diff c JOIN ai_models t ON t.source = c.source AND t.model_id = c.model_id
"""

# One event per subscriber, in the same transaction as the catalog: if the sync commits,
# the event exists; if it rolls back, no subscriber ever hears of it. The casts matter:
# jsonb_build_object takes "any", so untyped parameters would be ambiguous.
OUTBOX = """
INSERT INTO webhook_outbox (sync_id, subscriber_url, event_type, payload)
SELECT :sync_id, subscriber, CAST(:event_type AS text), jsonb_build_object(
    'event', CAST(:event_type AS text),
    'sync_id', CAST(:sync_id AS bigint),
    'run_id', CAST(:run_id AS text),
    'source', CAST(:source AS text),
    'effective_at', CAST(:as_of AS timestamptz),
    'counts', CAST(:counts AS jsonb),
    'changes', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'model_id', c.model_id, 'change_type', c.change_type, 'field', c.field,
                   'old', c.old_value, 'new', c.new_value,
                   'relative_change', c.relative_change::text) ORDER BY c.id)
        FROM ai_model_changes c WHERE c.sync_id = :sync_id), '[]'::jsonb))
FROM unnest(:subscribers) AS subscriber
"""

# Each source's meter rules (model_sync.costing), written only when they changed.
RECORD_METER_RULES = """
INSERT INTO ai_source_meters (source, meter, path_pattern, unit_exponent)
SELECT :source, m.meter, m.path_pattern, m.unit_exponent
FROM jsonb_to_recordset(CAST(:rules AS jsonb)) AS m(meter text, path_pattern text,
                                                   unit_exponent smallint)
ON CONFLICT (source, meter) DO UPDATE
    SET path_pattern = EXCLUDED.path_pattern, unit_exponent = EXCLUDED.unit_exponent
    WHERE (ai_source_meters.path_pattern, ai_source_meters.unit_exponent)
          IS DISTINCT FROM (EXCLUDED.path_pattern, EXCLUDED.unit_exponent)
"""

FORGET_METER_RULES = """
DELETE FROM ai_source_meters
WHERE source = :source AND NOT meter = ANY(CAST(:meters AS text[]))
"""
