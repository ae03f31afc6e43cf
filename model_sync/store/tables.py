"""The catalog schema as SQLAlchemy tables — the one place that names tables and columns.

Alembic migrations (``model_sync/migrations``) create and upgrade these tables; the
definitions here must match the head revision (a test compares them).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

ai_models = Table(
    "ai_models",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("model_id", Text, nullable=False),
    # provider/model, lowercase, the same across sources (README "Model identity").
    Column("canonical_model_id", Text),
    # Whose price the row carries: gateway, list (the model provider's own) or reseller.
    Column("price_role", Text),
    Column("model_name", Text),
    Column("provider", Text),
    Column("owned_by", Text),
    Column("description", Text),
    Column("model_type", Text),
    Column("context_window", BigInteger),
    Column("max_output_tokens", BigInteger),
    Column("released_at", DateTime(timezone=True)),
    Column("gateway_created_at", DateTime(timezone=True)),
    Column("deprecated_at", DateTime(timezone=True)),
    Column("capabilities", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("supports_function_calling", Boolean, nullable=False, server_default=false()),
    Column("supports_vision", Boolean, nullable=False, server_default=false()),
    Column("supports_reasoning", Boolean, nullable=False, server_default=false()),
    Column("cost_per_1m_input", Numeric),
    Column("cost_per_1m_output", Numeric),
    Column("cost_per_1m_cache_read", Numeric),
    Column("cost_per_1m_cache_write", Numeric),
    Column("web_search_cost", Numeric),
    Column("input_tiers", JSONB),
    Column("output_tiers", JSONB),
    Column("input_cache_read_tiers", JSONB),
    Column("input_cache_write_tiers", JSONB),
    Column("cost_bucket", Text),
    Column("pricing", JSONB),
    Column("raw", JSONB, nullable=False),
    # Lifecycle, written by the sync.
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("deactivated_at", DateTime(timezone=True)),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_changed_run_id", Text),
    # A served value could not be read: since when, and why. The row keeps its last valid
    # values (and stays active) until the model parses again.
    Column("stale_since", DateTime(timezone=True)),
    Column("stale_reason", Text),
    # User-owned: set by people and applications, never written by the sync.
    Column("is_recommended", Boolean, nullable=False, server_default=false()),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("source", "model_id", name="ai_models_source_model_id_key"),
    Index("ai_models_active_provider_idx", "is_active", "provider"),
    Index("ai_models_canonical_idx", "canonical_model_id"),
)

model_sync_runs = Table(
    "model_sync_runs",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("run_id", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_url", Text),
    Column("body_sha256", Text),
    Column("status", Text, nullable=False),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_ms", Integer),
    Column("total", Integer),
    Column("created", Integer),
    Column("updated", Integer),
    Column("unchanged", Integer),
    Column("deactivated", Integer),
    Column("reactivated", Integer),
    Column("failed", Integer),
    Column("skipped", JSONB),
    Column("effective_at", DateTime(timezone=True)),
    Column("accepted_by", Text),
    Column("accept_reason", Text),
    Column("anomalies", JSONB),
    Column("warnings", JSONB),
    # Served models kept with their last valid values, and why each could not be read.
    Column("stale", Integer),
    Column("stale_models", JSONB),
    # The response's key paths and value types, and how they moved since the last success.
    Column("schema_profile", JSONB),
    Column("schema_drift", JSONB),
    # The transform that read the body: a body synced by the same transform need not be again.
    Column("transform_version", Text),
    # The body equalled the last synced one: nothing was transformed, diffed or written.
    Column("unchanged_body", Boolean, nullable=False, server_default=false()),
    # Implausible moves accepted because another source already showed the same new price.
    Column("corroborated", JSONB),
    CheckConstraint("status IN ('success', 'failed')", name="model_sync_runs_status_check"),
    Index("model_sync_runs_source_finished_idx", "source", "finished_at"),
)

# The attributes whose history is kept: a new version opens whenever one of them changes.
TRACKED_COLUMNS = (
    "is_active",
    "model_type",
    "context_window",
    "max_output_tokens",
    "capabilities",
    "deprecated_at",
    "cost_per_1m_input",
    "cost_per_1m_output",
    "cost_per_1m_cache_read",
    "cost_per_1m_cache_write",
    "web_search_cost",
    "input_tiers",
    "output_tiers",
    "input_cache_read_tiers",
    "input_cache_write_tiers",
    "pricing",
)

ai_model_versions = Table(
    "ai_model_versions",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("model_id", Text, nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True)),
    Column("opened_by_sync", BigInteger, ForeignKey("model_sync_runs.id")),
    Column("closed_by_sync", BigInteger, ForeignKey("model_sync_runs.id")),
    # The tracked attributes, typed exactly as in ai_models.
    *(
        Column(name, ai_models.c[name].type, nullable=ai_models.c[name].nullable)
        for name in TRACKED_COLUMNS
    ),
    CheckConstraint(
        "valid_to IS NULL OR valid_to >= valid_from", name="ai_model_versions_period_check"
    ),
    Index(
        "ai_model_versions_current_key",
        "source",
        "model_id",
        unique=True,
        postgresql_where=text("valid_to IS NULL"),
    ),
    Index("ai_model_versions_model_period_idx", "source", "model_id", "valid_from"),
)


class ChangeType(StrEnum):
    """What one row of the per-run change report says happened to a model."""

    CREATED = "created"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    PRICE_CHANGED = "price_changed"
    TIERS_CHANGED = "tiers_changed"
    CAPABILITIES_CHANGED = "capabilities_changed"
    LIMITS_CHANGED = "limits_changed"
    DEPRECATED = "deprecated"
    STALE = "stale"
    RECOVERED = "recovered"


CHANGE_TYPES = tuple(change.value for change in ChangeType)

ai_model_changes = Table(
    "ai_model_changes",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("sync_id", BigInteger, ForeignKey("model_sync_runs.id"), nullable=False),
    Column("source", Text, nullable=False),
    Column("model_id", Text, nullable=False),
    Column("change_type", Text, nullable=False),
    Column("field", Text),
    Column("old_value", JSONB),
    Column("new_value", JSONB),
    Column("relative_change", Numeric),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(
        "change_type IN (" + ", ".join(f"'{t}'" for t in CHANGE_TYPES) + ")",
        name="ai_model_changes_type_check",
    ),
    Index("ai_model_changes_sync_idx", "sync_id"),
    Index("ai_model_changes_model_idx", "source", "model_id", "detected_at"),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "delivery_id",
        UUID(as_uuid=True),
        nullable=False,
        unique=True,
        server_default=text("gen_random_uuid()"),
    ),
    Column("sync_id", BigInteger, ForeignKey("model_sync_runs.id"), nullable=False),
    Column("subscriber_url", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column(
        "next_attempt_at", DateTime(timezone=True), nullable=False, server_default=text("now()")
    ),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    Index(
        "webhook_outbox_pending_idx",
        "next_attempt_at",
        postgresql_where=text("delivered_at IS NULL"),
    ),
)

# User-owned: your canonical id for a (source, model_id), overriding the derived one. The
# comparison and the corroboration of price moves read it; no sync writes it.
model_aliases = Table(
    "model_aliases",
    metadata,
    Column("source", Text, primary_key=True),
    Column("model_id", Text, primary_key=True),
    Column("canonical_model_id", Text, nullable=False),
    Column("note", Text),
)

# Every distinct response body of every source, compressed, once (by sha256), so the catalog's
# history can be rebuilt from what was really served (``model-sync rebuild``).
response_archive = Table(
    "response_archive",
    metadata,
    Column("sha256", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("first_fetched_at", DateTime(timezone=True), nullable=False),
    Column("byte_count", BigInteger, nullable=False),
    Column("compression", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

# When each source served a body different from the one it served before: the order in which
# the archive replays. A body repeated unchanged adds nothing here either.
response_captures = Table(
    "response_captures",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("sha256", Text, ForeignKey("response_archive.sha256"), nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    Index("response_captures_source_time_idx", "source", "fetched_at"),
)

# Every sync requested through the HTTP API: who (the token's sub), when, the answer's status
# and outcome, and the run it started or found running.
api_sync_requests = Table(
    "api_sync_requests",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("subject", Text),
    Column("status_code", Integer, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("run_id", Text),
    Index("api_sync_requests_time_idx", "requested_at"),
)

# Which price points price the usage meters beyond tokens, per source (model_sync.costing):
# written by each source's syncs from its declaration, read by ai_model_cost().
ai_source_meters = Table(
    "ai_source_meters",
    metadata,
    Column("source", Text, primary_key=True),
    Column("meter", Text, primary_key=True),
    Column("path_pattern", Text, nullable=False),
    Column("unit_exponent", SmallInteger, nullable=False, server_default=text("0")),
)

# Columns a sync may write: everything the transform produces. The user-owned columns are
# deliberately absent, so no code path of the sync can overwrite them.
USER_OWNED_COLUMNS = ("is_recommended", "priority")
