"""The catalog write: all of the sync's SQL, set-based, in one transaction.

The frame goes to Postgres in bulk: models the catalog already holds are COPYed into a
temporary table and diffed against the stored rows in one statement; models it has never held
are COPYed straight into ``ai_models`` once the guards have passed, so a first load writes
each row once. Everything else — the guards, the change report, the update, the deactivation,
the history versions and the webhook outbox — is derived from that diff in a handful of
statements, whatever the catalog's size. Rows whose stored values did not change are never
rewritten.

Everything happens in ONE transaction under a per-source advisory lock: readers see the
previous catalog or the new one, never a mix, and two syncs of one source never interleave.
The guards (shrink limit, price anomalies) run before the first write to a catalog table, and
a refused sync rolls back, leaving the catalog exactly as it was.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import psycopg
from sqlalchemy import Connection, Engine, bindparam, func, insert, null, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import Text

from model_sync.anomalies import FAIL, Finding, PriceChange, assess_price_changes, tiers_vanished
from model_sync.store.copy_text import copy_chunks, json_text
from model_sync.store.tables import (
    TRACKED_COLUMNS,
    USER_OWNED_COLUMNS,
    ai_model_changes,
    ai_models,
    model_sync_runs,
)
from model_sync.transform import FRAME_COLUMNS, storable_text

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


class SyncRefused(RuntimeError):
    """The new catalog failed a safety guard; nothing was written."""


class SyncBusy(RuntimeError):
    """Another sync of the same source holds the lock, and this one was told to skip."""


@dataclass(frozen=True)
class SyncCounts:
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    reactivated: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class SyncResult:
    counts: SyncCounts
    sync_id: int
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    change_counts: dict[str, int] = field(default_factory=dict)
    changes_preview: list[dict[str, Any]] = field(default_factory=list)
    versions_opened: int = 0
    warnings: list[Finding] = field(default_factory=list)
    accepted: list[Finding] = field(default_factory=list)
    webhook_events: int = 0
    active_models: int = 0
    inactive_models: int = 0
    duration_ms: int = 0


@dataclass(frozen=True)
class SyncRequest:
    """What one sync writes, where it came from, and the rules it must pass."""

    frame: pd.DataFrame
    source: str
    run_id: str
    source_url: str | None = None
    body_sha256: str | None = None
    skipped: Sequence[dict[str, Any]] = ()
    # When the response was true; None means now. Backfills pass each file's capture time.
    effective_at: datetime | None = None
    max_deactivation_share: float = 0.5
    anomaly_fail_factor: Decimal = Decimal(10)
    anomaly_warn_factor: Decimal = Decimal(3)
    accepted_by: str | None = None
    accept_reason: str | None = None
    webhook_urls: Sequence[str] = ()
    # "wait" for a running sync of the same source (up to the lock timeout), or "skip".
    on_busy: str = "wait"
    lock_timeout_seconds: float = 30.0
    statement_timeout_seconds: float = 300.0

    @property
    def accepts_anomalies(self) -> bool:
        return bool(self.accepted_by and self.accept_reason)


def _advisory_key(source: str) -> int:
    # A stable 32-bit key per source: syncs of one gateway serialize, different gateways don't.
    return zlib.crc32(f"model_sync:{source}".encode())


def _copy(connection: Connection, statement: str, chunks: Iterable[bytes]) -> None:
    """Send COPY text chunk by chunk: Postgres parses each chunk while Python builds the next
    (two cores, not one). psycopg's threaded QueuedLibpqWriter measured no faster here."""
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for chunk in chunks:
                copy.write(chunk)
    except psycopg.Error as error:
        # COPY goes around SQLAlchemy; give callers the same exception type as every other
        # statement of the sync (IntegrityError, OperationalError …), so a failed COPY is
        # reported, recorded and retried like one.
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


def _known_models(connection: Connection, source: str) -> set[str]:
    return set(
        connection.execute(
            select(ai_models.c.model_id).where(ai_models.c.source == source)
        ).scalars()
    )


def _stage(connection: Connection, frame: pd.DataFrame) -> None:
    """COPY the models the catalog already holds into a temporary table shaped like its
    columns, to be compared with the stored rows in SQL."""
    columns = ", ".join(FRAME_COLUMNS)
    connection.execute(
        text(
            f"CREATE TEMPORARY TABLE {STAGING_TABLE} ON COMMIT DROP AS "
            f"SELECT {columns} FROM ai_models WITH NO DATA"
        )
    )
    _copy(
        connection,
        f"COPY {STAGING_TABLE} ({columns}) FROM STDIN",
        copy_chunks(frame, ai_models, FRAME_COLUMNS),
    )
    connection.execute(text(f"ALTER TABLE {STAGING_TABLE} ADD PRIMARY KEY (source, model_id)"))
    # Join planning needs row counts and key statistics, not the JSON columns' (which would
    # have to be read and detoasted).
    connection.execute(text(f"ANALYZE {STAGING_TABLE} (source, model_id)"))


def _insert_new_models(
    connection: Connection, frame: pd.DataFrame, source: str, as_of: datetime, run_id: str
) -> None:
    """COPY models the catalog has never held straight into ``ai_models`` — one write per row
    instead of staging and copying again — and list them as ``created`` in the diff.

    Only syncs (holding this source's lock) insert rows, and the keys were read under that
    lock, so none of these can exist; if one somehow does, the unique key fails the COPY and
    the whole sync rolls back.
    """
    if frame.empty:
        return
    lifecycle = {
        "is_active": True,
        "first_seen_at": as_of,
        "updated_at": as_of,
        "last_changed_run_id": run_id,
    }
    columns = ", ".join((*FRAME_COLUMNS, *lifecycle))
    _copy(
        connection,
        f"COPY ai_models ({columns}) FROM STDIN",
        copy_chunks(frame, ai_models, FRAME_COLUMNS, constants=lifecycle),
    )
    connection.execute(
        text(
            # The ids travel as one JSON array: binding 100,000 strings as text[] costs more.
            "INSERT INTO catalog_diff (source, model_id, change) "
            "SELECT :source, model_id, 'created' "
            "FROM jsonb_array_elements_text(CAST(:ids AS jsonb)) AS model_id"
        ),
        {"source": source, "ids": json_text(frame["model_id"].tolist())},
    )


def _row(alias: str, columns: Sequence[str]) -> str:
    return "(" + ", ".join(f"{alias}.{column}" for column in columns) + ")"


def _list(alias: str, columns: Sequence[str]) -> str:
    return ", ".join(f"{alias}.{column}" for column in columns)


# Every staged model, and every active stored model, with what this sync does to it.
_DIFF_SQL = f"""
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
_FIELD_DIFF_SQL = f"""
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

_RECORD_CHANGES_SQL = """
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

# Models the catalog already held whose values changed, or that came back. New models were
# written by their COPY; unchanged ones are never touched.
_UPDATE_SQL = f"""
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

_DEACTIVATE_SQL = """
UPDATE ai_models t
SET is_active = false, deactivated_at = :as_of, updated_at = :as_of, last_changed_run_id = :run_id
FROM catalog_diff d
WHERE d.change = 'deactivated' AND t.source = d.source AND t.model_id = d.model_id
"""

# A model opens a version when a tracked attribute (or its active state) differs from its
# current version; unchanged models cannot differ, so only the diff's other rows are read.
_VERSION_DIFF_SQL = f"""
CREATE TEMPORARY TABLE version_diff ON COMMIT DROP AS
SELECT t.source, t.model_id, v.id AS prior_id
FROM catalog_diff d
JOIN ai_models t ON t.source = d.source AND t.model_id = d.model_id
LEFT JOIN ai_model_versions v
    ON v.source = t.source AND v.model_id = t.model_id AND v.valid_to IS NULL
WHERE d.change <> 'unchanged'
  AND (v.id IS NULL OR {_row("t", TRACKED_COLUMNS)} IS DISTINCT FROM {_row("v", TRACKED_COLUMNS)})
"""

_CLOSE_VERSIONS_SQL = """
UPDATE ai_model_versions v SET valid_to = :as_of, closed_by_sync = :sync_id
FROM version_diff c WHERE v.id = c.prior_id
"""

_OPEN_VERSIONS_SQL = f"""
INSERT INTO ai_model_versions (source, model_id, valid_from, opened_by_sync,
                               {", ".join(TRACKED_COLUMNS)})
SELECT t.source, t.model_id, :as_of, :sync_id, {_list("t", TRACKED_COLUMNS)}
FROM version_diff c JOIN ai_models t ON t.source = c.source AND t.model_id = c.model_id
"""

# One event per subscriber, in the same transaction as the catalog: if the sync commits,
# the event exists; if it rolls back, no subscriber ever hears of it. The casts matter:
# jsonb_build_object takes "any", so untyped parameters would be ambiguous.
_OUTBOX_SQL = """
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


def _set_timeouts(connection: Connection, request: SyncRequest) -> None:
    # set_config(..., true) is SET LOCAL: the bounds end with this transaction and never leak
    # into pooled connections.
    for setting, seconds in (
        ("lock_timeout", request.lock_timeout_seconds),
        ("statement_timeout", request.statement_timeout_seconds),
        # A sync whose process died (SIGKILL, lost host) is noticed while it waits on a lock,
        # instead of holding the sync lock until its statement times out.
        ("client_connection_check_interval", 2.0),
    ):
        connection.execute(
            text("SELECT set_config(:setting, :value, true)"),
            # 0 would mean "no limit"; never round a tiny bound down to that.
            {"setting": setting, "value": f"{max(1, round(seconds * 1000))}ms"},
        )


def _take_sync_lock(connection: Connection, request: SyncRequest) -> None:
    """Serialize syncs of one source: wait (bounded by lock_timeout) or skip."""
    key = {"key": _advisory_key(request.source)}
    if request.on_busy == "skip":
        if not connection.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), key).scalar():
            raise SyncBusy(
                f"another {request.source} sync is running; this one was skipped "
                "(MODEL_SYNC_CONCURRENT_SYNC=skip). Nothing was written."
            )
        return
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), key)


def _effective_time(connection: Connection, request: SyncRequest) -> datetime:
    as_of = connection.execute(
        # statement_timestamp(), not now(): now() is when the transaction began, which for a sync
        # that waited on the lock is before the winner's versions — and would look "older".
        text("SELECT coalesce(CAST(:at AS timestamptz), statement_timestamp())"),
        {"at": request.effective_at},
    ).scalar_one()
    latest = connection.execute(
        text("SELECT max(valid_from) FROM ai_model_versions WHERE source = :source"),
        {"source": request.source},
    ).scalar_one()
    if latest is not None and as_of < latest:
        raise SyncRefused(
            f"this response is dated {as_of.isoformat()}, before the newest recorded version "
            f"({latest.isoformat()}); history is append-only, so older responses cannot be "
            "loaded after newer ones. Nothing was written."
        )
    return as_of


def _guard_shrink(connection: Connection, request: SyncRequest) -> None:
    active = connection.execute(
        select(func.count()).where(ai_models.c.source == request.source, ai_models.c.is_active)
    ).scalar_one()
    missing = connection.execute(
        text("SELECT count(*) FROM catalog_diff WHERE change = 'deactivated'")
    ).scalar_one()
    if active and missing / active > request.max_deactivation_share:
        raise SyncRefused(
            f"refusing to deactivate {missing} of {active} active {request.source} models "
            f"({missing / active:.0%} > the limit of {request.max_deactivation_share:.0%}, "
            "MODEL_SYNC_MAX_DEACTIVATION_SHARE); the gateway may be serving a partial catalog. "
            "Nothing was written; the catalog is unchanged."
        )


def _assess_anomalies(connection: Connection, request: SyncRequest) -> list[Finding]:
    """Every flagged price move and vanished tier list; raises if one fails and is not accepted."""
    price_changes = [
        PriceChange(model_id, column, old, new)
        for model_id, column, old, new in connection.execute(
            text(
                "SELECT model_id, field, old_price, new_price FROM field_diff "
                "WHERE change_type = 'price_changed' ORDER BY model_id, field"
            )
        )
    ]
    findings = assess_price_changes(
        price_changes, request.anomaly_fail_factor, request.anomaly_warn_factor
    )
    findings += [
        tiers_vanished(model_id, column)
        for model_id, column in connection.execute(
            text(
                "SELECT model_id, field FROM field_diff WHERE change_type = 'tiers_changed' "
                "AND old_value IS NOT NULL AND new_value IS NULL ORDER BY model_id, field"
            )
        )
    ]
    failures = [f for f in findings if f.severity == FAIL]
    if failures and not request.accepts_anomalies:
        listed = "\n".join(f"  - {f.describe()}" for f in failures)
        raise SyncRefused(
            f"refusing {len(failures)} implausible price change(s):\n{listed}\n"
            "Nothing was written; the catalog is unchanged. If these prices are real, re-run "
            "with accepted_by and accept_reason set (see README, 'Accepting flagged changes')."
        )
    return findings


def catalog_stats(connection: Connection, source: str | None = None) -> tuple[int, int]:
    """(active, inactive) model counts, for one source or all."""
    query = select(
        func.count().filter(ai_models.c.is_active),
        func.count().filter(~ai_models.c.is_active),
    )
    if source is not None:
        query = query.where(ai_models.c.source == source)
    active, inactive = connection.execute(query).one()
    return active, inactive


def last_successful_sync(connection: Connection, source: str | None = None):
    """The newest successful ``model_sync_runs`` row (finished_at, total, failed), or None."""
    query = (
        select(model_sync_runs.c.finished_at, model_sync_runs.c.total, model_sync_runs.c.failed)
        .where(model_sync_runs.c.status == "success")
        .order_by(model_sync_runs.c.finished_at.desc().nulls_last())
        .limit(1)
    )
    if source is not None:
        query = query.where(model_sync_runs.c.source == source)
    return connection.execute(query).one_or_none()


def iso_utc(value: datetime | None) -> str | None:
    """``2026-11-27T02:00:04.123456Z`` — the old module's lastSyncDate format."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _skipped_json(request: SyncRequest) -> list[dict[str, Any]]:
    # The report about bad models must itself be storable, whatever their ids hold.
    return [
        {
            key: storable_text(value) if isinstance(value, str) else value
            for key, value in entry.items()
        }
        for entry in request.skipped
    ]


def _start_run(connection: Connection, request: SyncRequest, started_at: datetime) -> int:
    return connection.execute(
        insert(model_sync_runs)
        .values(
            run_id=request.run_id,
            source=request.source,
            source_url=request.source_url,
            body_sha256=request.body_sha256,
            status="success",
            started_at=started_at,
            effective_at=request.effective_at,
            accepted_by=request.accepted_by if request.accepts_anomalies else None,
            accept_reason=request.accept_reason if request.accepts_anomalies else None,
            skipped=_skipped_json(request),
        )
        .returning(model_sync_runs.c.id)
    ).scalar_one()


def _change_summary(connection: Connection, sync_id: int) -> tuple[dict[str, int], list[dict]]:
    counts = dict(
        connection.execute(
            select(ai_model_changes.c.change_type, func.count())
            .where(ai_model_changes.c.sync_id == sync_id)
            .group_by(ai_model_changes.c.change_type)
        ).all()
    )
    preview = [
        dict(row._mapping)
        for row in connection.execute(
            select(
                ai_model_changes.c.model_id,
                ai_model_changes.c.change_type,
                ai_model_changes.c.field,
                ai_model_changes.c.old_value,
                ai_model_changes.c.new_value,
                ai_model_changes.c.relative_change,
            )
            .where(ai_model_changes.c.sync_id == sync_id)
            .order_by(ai_model_changes.c.id)
            .limit(50)
        )
    ]
    return counts, preview


def sync_catalog(engine: Engine, request: SyncRequest, started_at: datetime) -> SyncResult:
    """Write one normalized catalog. Raises :class:`SyncRefused` when a guard trips."""
    clock = time.monotonic()
    failed = len(request.skipped)
    if request.frame.empty:
        raise SyncRefused(
            f"the response has no valid models ({failed} failed validation); nothing was "
            "written and the catalog is unchanged"
        )
    if set(request.frame["source"]) != {request.source}:
        raise SyncRefused(f"the frame holds models of other sources than {request.source!r}")
    duplicated = request.frame.duplicated(list(KEY_COLUMNS))
    if duplicated.any():
        raise SyncRefused(f"duplicate model ids: {list(request.frame[duplicated].model_id)}")

    with engine.begin() as connection:
        _set_timeouts(connection, request)
        _take_sync_lock(connection, request)
        as_of = _effective_time(connection, request)
        known = request.frame["model_id"].isin(_known_models(connection, request.source))
        # Filtering copies the frame; a first load or an unchanged key set needs no copy.
        known_frame = request.frame if known.all() else request.frame[known]
        new_frame = request.frame if not known.any() else request.frame[~known]
        _stage(connection, known_frame)
        connection.execute(text(_DIFF_SQL), {"source": request.source})
        _guard_shrink(connection, request)
        connection.execute(text(_FIELD_DIFF_SQL))
        findings = _assess_anomalies(connection, request)

        sync_id = _start_run(connection, request, started_at)
        params = {"sync_id": sync_id, "run_id": request.run_id, "as_of": as_of}
        _insert_new_models(connection, new_frame, request.source, as_of, request.run_id)
        connection.execute(text(_RECORD_CHANGES_SQL), params)
        connection.execute(text(_UPDATE_SQL), params)
        connection.execute(text(_DEACTIVATE_SQL), params)
        connection.execute(text(_VERSION_DIFF_SQL))
        connection.execute(text(_CLOSE_VERSIONS_SQL), params)
        versions_opened = connection.execute(text(_OPEN_VERSIONS_SQL), params).rowcount

        by_change: dict[str, list[str]] = {
            change: []
            for change in ("created", "updated", "reactivated", "deactivated", "unchanged")
        }
        for model_id, change in connection.execute(
            text("SELECT model_id, change FROM catalog_diff WHERE change <> 'unchanged' ORDER BY 1")
        ):
            by_change[change].append(model_id)
        total = len(request.frame)
        counts = SyncCounts(
            total=total,
            created=len(by_change["created"]),
            updated=len(by_change["updated"]),
            unchanged=total
            - len(by_change["created"])
            - len(by_change["updated"])
            - len(by_change["reactivated"]),
            deactivated=len(by_change["deactivated"]),
            reactivated=len(by_change["reactivated"]),
            failed=failed,
        )
        change_counts, preview = _change_summary(connection, sync_id)
        webhook_events = 0
        if change_counts and request.webhook_urls:
            webhook_events = connection.execute(
                text(_OUTBOX_SQL).bindparams(bindparam("subscribers", type_=ARRAY(Text))),
                {
                    **params,
                    "source": request.source,
                    "event_type": EVENT_TYPE,
                    "counts": json.dumps(counts.as_dict()),
                    "subscribers": list(request.webhook_urls),
                },
            ).rowcount
        active, inactive = catalog_stats(connection, request.source)
        duration_ms = round((time.monotonic() - clock) * 1000)
        accepted = [f for f in findings if f.severity == FAIL]
        warnings = [f for f in findings if f.severity != FAIL]
        connection.execute(
            update(model_sync_runs)
            .where(model_sync_runs.c.id == sync_id)
            .values(
                finished_at=func.clock_timestamp(),
                duration_ms=duration_ms,
                effective_at=as_of,
                anomalies=[f.as_dict() for f in accepted] or null(),
                warnings=[f.as_dict() for f in warnings] or null(),
                **counts.as_dict(),
            )
        )
    return SyncResult(
        counts=counts,
        sync_id=sync_id,
        created=by_change["created"],
        updated=by_change["updated"],
        reactivated=by_change["reactivated"],
        deactivated=by_change["deactivated"],
        change_counts=change_counts,
        changes_preview=preview,
        versions_opened=versions_opened,
        warnings=warnings,
        accepted=accepted,
        webhook_events=webhook_events,
        active_models=active,
        inactive_models=inactive,
        duration_ms=duration_ms,
    )


def record_failed_run(
    engine: Engine, request: SyncRequest, started_at: datetime, error: str
) -> None:
    """Log a failed attempt in its own transaction, after the sync's own was rolled back."""
    with engine.begin() as connection:
        connection.execute(
            insert(model_sync_runs).values(
                run_id=request.run_id,
                source=request.source,
                source_url=request.source_url,
                body_sha256=request.body_sha256,
                status="failed",
                error=error[:10_000],
                started_at=started_at,
                finished_at=func.clock_timestamp(),
                effective_at=request.effective_at,
                accepted_by=request.accepted_by if request.accepts_anomalies else None,
                accept_reason=request.accept_reason if request.accepts_anomalies else None,
                failed=len(request.skipped),
                total=len(request.frame),
                skipped=_skipped_json(request),
            )
        )
