"""Sync one source: from a fetched body to a committed catalog, or a clear refusal.

This is the one path every entry point takes — the Dagster assets (and through them the
schedule, the sensors, the UI, the CLI and the HTTP API), the backfill of saved responses and
the rebuild from the archive. None of them assembles the pipeline itself.

1. The body is archived (once per distinct body).
2. If it equals the body of the source's last successful sync, read by the same transform, the
   sync is recorded as verified-unchanged: nothing is decoded, transformed, diffed or written.
3. Otherwise it is decoded and checked by its source, normalized, compared with the last
   profile for drift, and written in one transaction (``store.sync``). A refused or failed
   write is recorded in ``model_sync_runs`` and raised.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from model_sync.drift import SchemaDrift, compare_profiles
from model_sync.gateway import FetchedBody
from model_sync.settings import SyncPolicy
from model_sync.sources.base import ResponseError, Source, decode_json
from model_sync.store import archive, migrate
from model_sync.store.comparison import price_disagreements
from model_sync.store.database import describe_database_error
from model_sync.store.runs import (
    RunRecord,
    catalog_stats,
    last_schema_profile,
    last_successful_sync,
    record_failed_run,
    record_unchanged_run,
)
from model_sync.store.sync import (
    Acceptance,
    SyncCounts,
    SyncRefused,
    SyncRequest,
    SyncResult,
    set_timeouts,
    sync_catalog,
    take_sync_lock,
)
from model_sync.transform import NormalizedModels, cycle_collection_paused, normalize

_PACKAGE = Path(__file__).resolve().parent
# The code that decides what a body means. A change to any of it (or to pydantic, or to the
# schema) changes the version, so an unchanged body is read again by the new code.
_TRANSFORM_MODULES = ("transform.py", "pricing.py", "drift.py", "sources/base.py")


def transform_version(source: Source) -> str:
    return _transform_version(source.entries.__module__)


@cache
def _transform_version(source_module: str) -> str:
    digest = hashlib.sha256()
    module = Path(__import__(source_module, fromlist=["_"]).__file__)
    for path in (*(_PACKAGE / name for name in _TRANSFORM_MODULES), module):
        digest.update(path.read_bytes())
    digest.update(version("pydantic").encode())
    digest.update(migrate.head_revision().encode())
    return digest.hexdigest()[:16]


def read_response(source: Source, fetched: FetchedBody) -> NormalizedModels:
    """Decode and check the body as ``source`` serves it, then normalize every entry."""
    # Decoding builds a container per served object: the same collector walks the
    # transform pauses for (see cycle_collection_paused) would repeatedly scan the tree.
    with cycle_collection_paused():
        try:
            entries = source.entries(decode_json(fetched.body))
        except ResponseError as error:
            raise fetched.error(str(error)) from None
        return normalize(source, entries)


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync of one source did (a full sync, or a verified-unchanged one)."""

    source: Source
    fetched: FetchedBody
    sync_id: int
    counts: SyncCounts
    active_models: int
    inactive_models: int
    unchanged_body: bool
    archived_new_body: bool
    models: NormalizedModels | None = None
    drift: SchemaDrift | None = None
    result: SyncResult | None = None
    transform_ms: int = 0
    load_ms: int = 0
    archive_ms: int = 0
    # Canonical models and price fields where this source and another disagree.
    disagreements: list[dict[str, Any]] = field(default_factory=list)


class SyncFailed(RuntimeError):
    """The write failed or was refused; it is recorded in ``model_sync_runs``."""

    def __init__(self, message: str, *, refused: bool):
        super().__init__(message)
        self.refused = refused


def sync_response(
    engine: Engine,
    source: Source,
    fetched: FetchedBody,
    *,
    run_id: str,
    policy: SyncPolicy | None = None,
    effective_at: datetime | None = None,
    acceptance: Acceptance | None = None,
    webhook_urls: Sequence[str] = (),
    skip_unchanged: bool = True,
    archive_body: bool = True,
    peer_sources: Sequence[str] = (),
) -> SyncOutcome:
    """Sync ``source`` from one fetched body. Raises ``GatewayError`` for a body that is not
    the source's model list, ``SyncBusy`` when told to skip a running sync, and
    :class:`SyncFailed` (recorded) when the write was refused or failed."""
    policy = policy or SyncPolicy()
    started_at = datetime.now(UTC)
    # A replay from the archive (model-sync rebuild) does not archive its bodies again.
    clock = time.monotonic()
    archived_new = archive_body and archive.archive_response(engine, source.name, fetched)
    archive_ms = round((time.monotonic() - clock) * 1000)
    version_now = transform_version(source)
    record = RunRecord(
        run_id=run_id,
        source=source.name,
        source_url=fetched.url,
        body_sha256=fetched.sha256,
        transform_version=version_now,
        effective_at=effective_at,
    )
    if skip_unchanged and acceptance is None:
        try:
            unchanged = _record_if_unchanged(engine, record, policy, started_at)
        except SQLAlchemyError as error:
            # It waits on the sync lock like a sync: a timeout there is the sync's failure.
            message = describe_database_error(error)
            with contextlib.suppress(SQLAlchemyError):
                record_failed_run(engine, record, started_at, message)
            raise SyncFailed(message, refused=False) from error
        if unchanged is not None:
            sync_id, counts, active, inactive = unchanged
            return SyncOutcome(
                source,
                fetched,
                sync_id,
                counts,
                active,
                inactive,
                True,
                archived_new,
                archive_ms=archive_ms,
            )

    clock = time.monotonic()
    models = read_response(source, fetched)
    with engine.connect() as connection:
        drift = compare_profiles(last_schema_profile(connection, source.name), models.profile)
    transform_ms = round((time.monotonic() - clock) * 1000)
    request = SyncRequest(
        source=source,
        models=models,
        run_id=run_id,
        policy=policy,
        source_url=fetched.url,
        body_sha256=fetched.sha256,
        transform_version=version_now,
        effective_at=effective_at,
        acceptance=acceptance,
        drift=drift,
        webhook_urls=webhook_urls,
        peer_sources=peer_sources,
    )
    clock = time.monotonic()
    try:
        # The load builds staging text and compares rows for every model: the same bulk
        # allocation pattern as the transform, with the whole response still alive.
        with cycle_collection_paused():
            result = sync_catalog(engine, request, started_at)
    except (SyncRefused, SQLAlchemyError) as error:
        refused = isinstance(error, SyncRefused)
        message = str(error) if refused else describe_database_error(error)
        # When the database is what failed, recording fails too; the error below says so.
        with contextlib.suppress(SQLAlchemyError):
            record_failed_run(engine, request.record(), started_at, message, total=models.served)
        raise SyncFailed(message, refused=refused) from error
    disagreements = []
    if peer_sources:
        with engine.begin() as connection:
            disagreements = price_disagreements(connection, source.name, policy.tolerance)
    return SyncOutcome(
        source=source,
        fetched=fetched,
        disagreements=disagreements,
        sync_id=result.sync_id,
        counts=result.counts,
        active_models=result.active_models,
        inactive_models=result.inactive_models,
        unchanged_body=False,
        archived_new_body=archived_new,
        models=models,
        drift=drift,
        result=result,
        transform_ms=transform_ms,
        load_ms=round((time.monotonic() - clock) * 1000),
        archive_ms=archive_ms,
    )


def _record_if_unchanged(
    engine: Engine, record: RunRecord, policy: SyncPolicy, started_at: datetime
) -> tuple[int, SyncCounts, int, int] | None:
    """Under the source's sync lock (so no other sync can commit in between): when the last
    successful sync read this very body with this very transform, record a verified-unchanged
    run and return its counts."""
    with engine.begin() as connection:
        set_timeouts(connection, policy)
        take_sync_lock(connection, record.source, policy.concurrent_sync)
        last = last_successful_sync(connection, record.source)
        if (
            last is None
            or last.body_sha256 != record.body_sha256
            or last.transform_version != record.transform_version
        ):
            return None
        sync_id = record_unchanged_run(connection, record, started_at, last)
        connection.execute(
            text("UPDATE model_sync_runs SET duration_ms = :ms WHERE id = :id"),
            {"ms": round((datetime.now(UTC) - started_at).total_seconds() * 1000), "id": sync_id},
        )
        active, inactive = catalog_stats(connection, record.source)
    total = last.total or 0
    counts = SyncCounts(
        total=total, unchanged=total, failed=last.failed or 0, stale=last.stale or 0
    )
    return sync_id, counts, active, inactive
