"""``model_sync_runs``: one row per sync attempt, and the catalog stats read beside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, null, select, text, update

from model_sync.sources.base import storable_text
from model_sync.store.tables import ai_models, model_sync_runs


@dataclass(frozen=True)
class RunRecord:
    """What a sync attempt records about itself, whatever its outcome."""

    run_id: str
    source: str
    source_url: str | None = None
    body_sha256: str | None = None
    transform_version: str | None = None
    effective_at: datetime | None = None
    accepted_by: str | None = None
    accept_reason: str | None = None
    skipped: Sequence[dict[str, Any]] = ()
    schema_profile: dict[str, Any] | None = None
    schema_drift: dict[str, Any] | None = None

    def columns(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "source_url": self.source_url,
            "body_sha256": self.body_sha256,
            "transform_version": self.transform_version,
            "effective_at": self.effective_at,
            "accepted_by": self.accepted_by,
            "accept_reason": self.accept_reason,
            "skipped": _storable_records(self.skipped),
            "schema_profile": self.schema_profile if self.schema_profile is not None else null(),
            "schema_drift": self.schema_drift or null(),
        }


def _storable_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # The report about bad models must itself be storable, whatever their ids hold.
    return [
        {k: storable_text(v) if isinstance(v, str) else v for k, v in entry.items()}
        for entry in records
    ]


def start_run(connection: Connection, record: RunRecord, started_at: datetime) -> int:
    return connection.execute(
        insert(model_sync_runs)
        .values(status="success", started_at=started_at, **record.columns())
        .returning(model_sync_runs.c.id)
    ).scalar_one()


def finish_run(connection: Connection, sync_id: int, **values: Any) -> None:
    connection.execute(
        update(model_sync_runs)
        .where(model_sync_runs.c.id == sync_id)
        .values(finished_at=func.clock_timestamp(), **values)
    )


def record_failed_run(
    engine: Engine,
    record: RunRecord,
    started_at: datetime,
    error: str,
    *,
    total: int | None = None,
) -> None:
    """Log a failed attempt in its own transaction, after the sync's own was rolled back."""
    with engine.begin() as connection:
        connection.execute(
            insert(model_sync_runs).values(
                status="failed",
                error=error[:10_000],
                started_at=started_at,
                finished_at=func.clock_timestamp(),
                failed=len(record.skipped),
                total=total,
                **record.columns(),
            )
        )


@dataclass(frozen=True)
class LastSync:
    """The newest successful sync of a source (or of any source)."""

    id: int
    finished_at: datetime | None
    total: int | None
    failed: int | None
    stale: int | None
    stale_models: list[dict[str, Any]] | None
    skipped: list[dict[str, Any]] | None
    body_sha256: str | None
    transform_version: str | None
    schema_drift: dict[str, Any] | None


def catalog_created(connection: Connection) -> bool:
    """Whether the catalog's schema exists. Readers never migrate: before the first sync of a
    fresh database there is nothing to read, which a reader takes as "never synced"."""
    return bool(
        connection.execute(text("SELECT to_regclass('model_sync_runs') IS NOT NULL")).scalar_one()
    )


def last_successful_sync(connection: Connection, source: str | None = None) -> LastSync | None:
    query = (
        select(
            model_sync_runs.c.id,
            model_sync_runs.c.finished_at,
            model_sync_runs.c.total,
            model_sync_runs.c.failed,
            model_sync_runs.c.stale,
            model_sync_runs.c.stale_models,
            model_sync_runs.c.skipped,
            model_sync_runs.c.body_sha256,
            model_sync_runs.c.transform_version,
            model_sync_runs.c.schema_drift,
        )
        .where(model_sync_runs.c.status == "success")
        .order_by(model_sync_runs.c.finished_at.desc().nulls_last(), model_sync_runs.c.id.desc())
        .limit(1)
    )
    if source is not None:
        query = query.where(model_sync_runs.c.source == source)
    row = connection.execute(query).one_or_none()
    return LastSync(*row) if row is not None else None


def last_schema_profile(connection: Connection, source: str) -> dict[str, list[str]] | None:
    """The profile of the newest successful sync that read its body (the baseline for drift)."""
    return connection.execute(
        select(model_sync_runs.c.schema_profile)
        .where(
            model_sync_runs.c.source == source,
            model_sync_runs.c.status == "success",
            model_sync_runs.c.schema_profile.is_not(None),
        )
        .order_by(model_sync_runs.c.finished_at.desc().nulls_last(), model_sync_runs.c.id.desc())
        .limit(1)
    ).scalar()


def record_unchanged_run(
    connection: Connection, record: RunRecord, started_at: datetime, last: LastSync
) -> int:
    """A sync whose body equals the last synced one: verified, nothing transformed or written
    but this row. Its counts are the catalog's, as a full diff would have found them."""
    total = last.total or 0
    return connection.execute(
        insert(model_sync_runs)
        .values(
            status="success",
            started_at=started_at,
            finished_at=func.clock_timestamp(),
            unchanged_body=True,
            total=total,
            created=0,
            updated=0,
            unchanged=total,
            deactivated=0,
            reactivated=0,
            failed=last.failed or 0,
            stale=last.stale or 0,
            stale_models=last.stale_models or null(),
            **{**record.columns(), "skipped": last.skipped or []},
        )
        .returning(model_sync_runs.c.id)
    ).scalar_one()


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


def stale_models(connection: Connection, source: str) -> list[dict[str, Any]]:
    """Every stale model of a source: id, since when, why."""
    return [
        {"model_id": model_id, "since": iso_utc(since), "reason": reason}
        for model_id, since, reason in connection.execute(
            text(
                "SELECT model_id, stale_since, stale_reason FROM ai_models "
                "WHERE source = :source AND stale_since IS NOT NULL ORDER BY model_id"
            ),
            {"source": source},
        )
    ]


def iso_utc(value: datetime | None) -> str | None:
    """``2026-11-27T02:00:04.123456Z`` — the old module's lastSyncDate format."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None
