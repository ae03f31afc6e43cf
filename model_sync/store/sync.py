"""The catalog write: all of the sync's SQL, set-based, in one transaction.

The frame goes to Postgres in bulk (COPY into a temporary table); classification, upsert and
deactivation are then single statements, so the cost is a handful of round trips whatever the
catalog's size, and rows whose stored values did not change are not rewritten at all.

Everything happens in ONE transaction under a per-source advisory lock: readers see the
previous catalog or the new one, never a mix, and two syncs of the same source never
interleave. The guard (shrink limit) runs inside that transaction, before the first write, so
a refused sync leaves the catalog exactly as it was.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, func, insert, select, text

from model_sync.store.tables import USER_OWNED_COLUMNS, ai_models, model_sync_runs
from model_sync.transform import FRAME_COLUMNS

# Columns the sync writes from the frame. The key columns identify a row; the others are
# compared to decide whether a stored value really changed.
KEY_COLUMNS = ("source", "model_id")
CONTENT_COLUMNS = tuple(column for column in FRAME_COLUMNS if column not in KEY_COLUMNS)
JSON_COLUMNS = frozenset(
    column.name for column in ai_models.columns if column.type.__class__.__name__ == "JSONB"
)
assert set(FRAME_COLUMNS) <= set(ai_models.columns.keys()), "frame and table disagree"
assert not set(FRAME_COLUMNS) & set(USER_OWNED_COLUMNS), "the sync must never write user columns"

STAGING_TABLE = "ai_models_staged"


class SyncRefused(RuntimeError):
    """The new catalog failed a safety guard; nothing was written."""


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
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    active_models: int = 0
    inactive_models: int = 0
    duration_ms: int = 0


@dataclass(frozen=True)
class SyncRequest:
    """What one sync writes, and where it came from (recorded in ``model_sync_runs``)."""

    frame: pd.DataFrame
    source: str
    run_id: str
    source_url: str | None = None
    body_sha256: str | None = None
    skipped: Sequence[dict[str, Any]] = ()
    max_deactivation_share: float = 0.5
    lock_timeout_seconds: float = 30.0
    statement_timeout_seconds: float = 300.0


def _advisory_key(source: str) -> int:
    # A stable 32-bit key per source: syncs of one gateway serialize, different gateways don't.
    return zlib.crc32(f"model_sync:{source}".encode())


def _copy_value(column: str, value: Any) -> Any:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return None
    if column in JSON_COLUMNS:
        return Jsonb(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _stage(connection: Connection, frame: pd.DataFrame) -> None:
    """COPY the frame into a temporary table shaped exactly like the catalog's columns."""
    columns = ", ".join(FRAME_COLUMNS)
    connection.execute(
        text(
            f"CREATE TEMPORARY TABLE {STAGING_TABLE} ON COMMIT DROP AS "
            f"SELECT {columns} FROM ai_models WITH NO DATA"
        )
    )
    cursor = connection.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {STAGING_TABLE} ({columns}) FROM STDIN") as copy:
        for record in frame.itertuples(index=False, name=None):
            copy.write_row(
                [
                    _copy_value(column, value)
                    for column, value in zip(FRAME_COLUMNS, record, strict=True)
                ]
            )
    connection.execute(text(f"ALTER TABLE {STAGING_TABLE} ADD PRIMARY KEY (source, model_id)"))
    # Without statistics the planner guesses a tiny table and may pick nested loops.
    connection.execute(text(f"ANALYZE {STAGING_TABLE}"))


def _content_tuple(alias: str) -> str:
    return "(" + ", ".join(f"{alias}.{column}" for column in CONTENT_COLUMNS) + ")"


# Classify every staged model against the stored catalog and write only the rows that are new,
# returning, or really changed. Data-modifying CTEs run once, to completion, on one snapshot.
_UPSERT_SQL = f"""
WITH classified AS (
    SELECT s.source, s.model_id,
           CASE
               WHEN t.model_id IS NULL THEN 'created'
               WHEN NOT t.is_active THEN 'reactivated'
               WHEN {_content_tuple("t")} IS DISTINCT FROM {_content_tuple("s")} THEN 'updated'
               ELSE 'unchanged'
           END AS change
    FROM {STAGING_TABLE} s
    LEFT JOIN ai_models t ON t.source = s.source AND t.model_id = s.model_id
), written AS (
    INSERT INTO ai_models ({", ".join(FRAME_COLUMNS)}, is_active, deactivated_at,
                           first_seen_at, updated_at, last_changed_run_id)
    SELECT {", ".join(f"s.{column}" for column in FRAME_COLUMNS)}, true, NULL,
           now(), now(), :run_id
    FROM {STAGING_TABLE} s
    JOIN classified c ON c.source = s.source AND c.model_id = s.model_id
    WHERE c.change <> 'unchanged'
    ON CONFLICT (source, model_id) DO UPDATE SET
        {", ".join(f"{column} = EXCLUDED.{column}" for column in CONTENT_COLUMNS)},
        is_active = true,
        deactivated_at = NULL,
        updated_at = EXCLUDED.updated_at,
        last_changed_run_id = EXCLUDED.last_changed_run_id
    RETURNING 1
)
SELECT model_id, change FROM classified WHERE change <> 'unchanged' ORDER BY model_id
"""

_SHRINK_SQL = f"""
SELECT count(*) FILTER (WHERE t.is_active) AS active,
       count(*) FILTER (WHERE t.is_active AND s.model_id IS NULL) AS missing
FROM ai_models t
LEFT JOIN {STAGING_TABLE} s ON s.source = t.source AND s.model_id = t.model_id
WHERE t.source = :source
"""

_DEACTIVATE_SQL = f"""
UPDATE ai_models t
SET is_active = false, deactivated_at = now(), updated_at = now(), last_changed_run_id = :run_id
WHERE t.source = :source AND t.is_active
  AND NOT EXISTS (
      SELECT 1 FROM {STAGING_TABLE} s WHERE s.source = t.source AND s.model_id = t.model_id
  )
RETURNING t.model_id
"""


def _set_timeouts(connection: Connection, request: SyncRequest) -> None:
    # SET LOCAL: the bounds end with this transaction and never leak into pooled connections.
    for setting, seconds in (
        ("lock_timeout", request.lock_timeout_seconds),
        ("statement_timeout", request.statement_timeout_seconds),
    ):
        connection.execute(
            text("SELECT set_config(:setting, :value, true)"),
            {"setting": setting, "value": f"{int(seconds * 1000)}ms"},
        )


def _guard_shrink(connection: Connection, request: SyncRequest) -> int:
    active, missing = connection.execute(text(_SHRINK_SQL), {"source": request.source}).one()
    if active and missing / active > request.max_deactivation_share:
        raise SyncRefused(
            f"refusing to deactivate {missing} of {active} active {request.source} models "
            f"({missing / active:.0%} > the limit of {request.max_deactivation_share:.0%}, "
            "MODEL_SYNC_MAX_DEACTIVATION_SHARE); the gateway may be serving a partial catalog. "
            "Nothing was written; the catalog is unchanged."
        )
    return missing


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


def _run_row(request: SyncRequest, started_at: datetime, **values: Any) -> dict[str, Any]:
    return {
        "run_id": request.run_id,
        "source": request.source,
        "source_url": request.source_url,
        "body_sha256": request.body_sha256,
        "started_at": started_at,
        "skipped": json.loads(json.dumps(list(request.skipped))),
        **values,
    }


def sync_catalog(engine: Engine, request: SyncRequest, started_at: datetime) -> SyncResult:
    """Write one normalized catalog. Raises :class:`SyncRefused` when a guard trips."""
    clock = time.monotonic()
    failed = len(request.skipped)
    if request.frame.empty:
        raise SyncRefused(
            f"the response has no valid models ({failed} failed validation); nothing was "
            "written and the catalog is unchanged"
        )
    duplicated = request.frame.duplicated(list(KEY_COLUMNS))
    if duplicated.any():
        raise SyncRefused(f"duplicate model ids in the frame: {request.frame[duplicated].model_id}")

    with engine.begin() as connection:
        _set_timeouts(connection, request)
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _advisory_key(request.source)}
        )
        _stage(connection, request.frame)
        _guard_shrink(connection, request)
        changes = connection.execute(text(_UPSERT_SQL), {"run_id": request.run_id}).all()
        deactivated = sorted(
            connection.execute(
                text(_DEACTIVATE_SQL), {"source": request.source, "run_id": request.run_id}
            ).scalars()
        )
        by_change: dict[str, list[str]] = {"created": [], "updated": [], "reactivated": []}
        for model_id, change in changes:
            by_change[change].append(model_id)
        total = len(request.frame)
        counts = SyncCounts(
            total=total,
            created=len(by_change["created"]),
            updated=len(by_change["updated"]),
            unchanged=total - len(changes),
            deactivated=len(deactivated),
            reactivated=len(by_change["reactivated"]),
            failed=failed,
        )
        active, inactive = catalog_stats(connection, request.source)
        duration_ms = round((time.monotonic() - clock) * 1000)
        connection.execute(
            insert(model_sync_runs).values(
                _run_row(
                    request,
                    started_at,
                    status="success",
                    finished_at=func.clock_timestamp(),
                    duration_ms=duration_ms,
                    **counts.as_dict(),
                )
            )
        )
    return SyncResult(
        counts=counts,
        created=by_change["created"],
        updated=by_change["updated"],
        reactivated=by_change["reactivated"],
        deactivated=deactivated,
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
                _run_row(
                    request,
                    started_at,
                    status="failed",
                    error=error[:10_000],
                    finished_at=func.clock_timestamp(),
                    failed=len(request.skipped),
                    total=len(request.frame),
                )
            )
        )
