"""The catalog write: one transaction per sync, set-based, under a per-source lock.

Models the catalog already holds are COPYed into a temporary table and diffed against the
stored rows in one statement; models it has never held are COPYed straight into ``ai_models``
once the guards have passed, so a first load writes each row once. Everything else — the
guards, the change report, the update, the deactivation, the stale marks, the history versions
and the webhook outbox — is derived from that diff in a handful of statements, whatever the
catalog's size (see ``statements.py``). Rows whose stored values did not change are never
rewritten.

A served model is never deactivated because it could not be read: a broken one is staged as
its stored row (present, unchanged, marked stale); a broken optional field keeps its stored
columns. Readers see the previous catalog or the new one, never a mix, and two syncs of one
source never interleave. The guards (shrink limit, price anomalies) run before the first write
to a catalog table, and a refused sync rolls back, leaving the catalog exactly as it was.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import ARRAY, Connection, Engine, bindparam, func, null, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import Text

from model_sync.anomalies import FAIL, Finding, PriceChange, assess_price_changes, tiers_vanished
from model_sync.drift import SchemaDrift
from model_sync.settings import ConcurrentSync, SyncPolicy
from model_sync.sources.base import Source
from model_sync.store import statements as sql
from model_sync.store.copy_text import copy_chunks, json_text
from model_sync.store.runs import (
    RunRecord,
    catalog_stats,
    finish_run,
    stale_models,
    start_run,
)
from model_sync.store.tables import ai_model_changes, ai_models
from model_sync.transform import FRAME_COLUMNS, NormalizedModels, SkippedModel

STAGING_TYPES = {"kept_columns": ARRAY(Text)}
SYNC_WORK_MEM = "64MB"


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
    stale: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Acceptance:
    """An operator's deliberate acceptance of flagged price changes (run config)."""

    accepted_by: str
    reason: str


@dataclass(frozen=True)
class SyncRequest:
    """One source's normalized response, where it came from, and the rules it must pass."""

    source: Source
    models: NormalizedModels
    run_id: str
    policy: SyncPolicy = SyncPolicy()
    source_url: str | None = None
    body_sha256: str | None = None
    transform_version: str | None = None
    # When the response was true; None means now. Backfills pass each file's capture time.
    effective_at: datetime | None = None
    acceptance: Acceptance | None = None
    drift: SchemaDrift | None = None
    webhook_urls: Sequence[str] = ()
    # Other enabled sources whose prices may corroborate an implausible move of this one.
    peer_sources: Sequence[str] = ()

    def record(self, skipped: Iterable[SkippedModel] | None = None) -> RunRecord:
        """What ``model_sync_runs`` records about this attempt."""
        skipped = list(self.models.skipped if skipped is None else skipped)
        return RunRecord(
            run_id=self.run_id,
            source=self.source.name,
            source_url=self.source_url,
            body_sha256=self.body_sha256,
            transform_version=self.transform_version,
            effective_at=self.effective_at,
            accepted_by=self.acceptance.accepted_by if self.acceptance else None,
            accept_reason=self.acceptance.reason if self.acceptance else None,
            skipped=[model.as_record() for model in skipped],
            schema_profile=self.models.profile,
            schema_drift=self.drift.as_json() if self.drift else None,
        )


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
    stale_models: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedModel] = field(default_factory=list)
    corroborated: list[dict[str, str]] = field(default_factory=list)


def advisory_key(source: str) -> int:
    # A stable 32-bit key per source: syncs of one source serialize, different sources don't.
    return zlib.crc32(f"model_sync:{source}".encode())


def copy_into(connection: Connection, statement: str, chunks: Iterable[bytes]) -> None:
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


def set_local(connection: Connection, setting: str, value: str) -> None:
    """``SET LOCAL``: the value ends with this transaction and never leaks into pooled
    connections."""
    connection.execute(
        text("SELECT set_config(:setting, :value, true)"), {"setting": setting, "value": value}
    )


def set_timeouts(connection: Connection, policy: SyncPolicy) -> None:
    for setting, seconds in (
        ("lock_timeout", policy.lock_timeout_seconds),
        ("statement_timeout", policy.statement_timeout_seconds),
        # A sync whose process died (SIGKILL, lost host) is noticed while it waits on a lock,
        # instead of holding the sync lock until its statement times out.
        ("client_connection_check_interval", 2.0),
    ):
        # 0 would mean "no limit"; never round a tiny bound down to that.
        set_local(connection, setting, f"{max(1, round(seconds * 1000))}ms")


def take_sync_lock(connection: Connection, source: str, on_busy: ConcurrentSync) -> None:
    """Serialize syncs of one source: wait (bounded by lock_timeout) or skip."""
    key = {"key": advisory_key(source)}
    if on_busy == ConcurrentSync.SKIP:
        if not connection.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), key).scalar():
            raise SyncBusy(
                f"another {source} sync is running; this one was skipped "
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
        {"source": request.source.name},
    ).scalar_one()
    if latest is not None and as_of < latest:
        raise SyncRefused(
            f"this response is dated {as_of.isoformat()}, before the newest recorded version "
            f"({latest.isoformat()}); history is append-only, so older responses cannot be "
            "loaded after newer ones. Nothing was written."
        )
    return as_of


def _known_models(connection: Connection, source: str) -> set[str]:
    return set(
        connection.execute(
            select(ai_models.c.model_id).where(ai_models.c.source == source)
        ).scalars()
    )


def _stage(connection: Connection, request: SyncRequest, known: set[str]) -> list[SkippedModel]:
    """Stage what the catalog already holds: its served rows (marks included), and its broken
    models as their stored rows. Returns the broken models it never held (skipped)."""
    frame = request.models.frame
    connection.execute(text(sql.CREATE_STAGING))
    held = frame["model_id"].isin(known)
    staged = frame if held.all() else frame[held]
    copy_into(
        connection,
        sql.COPY_STAGING,
        copy_chunks(staged, ai_models, sql.STAGED_COLUMNS, extra_types=STAGING_TYPES),
    )
    kept = [b for b in request.models.broken if b.model_id in known]
    if kept:
        connection.execute(
            text(sql.STAGE_STORED),
            {
                "source": request.source.name,
                "broken": json_text(
                    [{"model_id": b.model_id, "reason": b.as_record()["reason"]} for b in kept]
                ),
            },
        )
    if staged["kept_columns"].map(bool).any():
        connection.execute(text(sql.KEEP_STORED_COLUMNS))
    connection.execute(text(sql.INDEX_STAGING))
    connection.execute(text(sql.ANALYZE_STAGING))
    return [b for b in request.models.broken if b.model_id not in known]


def _insert_new_models(
    connection: Connection, request: SyncRequest, known: set[str], as_of: datetime
) -> bool:
    """COPY models the catalog has never held straight into ``ai_models`` — one write per row
    instead of staging and copying again — and list them as ``created`` in the diff. Returns
    whether any of them is stale already.

    Only syncs (holding this source's lock) insert rows, and the keys were read under that
    lock, so none of these can exist; if one somehow does, the unique key fails the COPY and
    the whole sync rolls back.
    """
    frame = request.models.frame
    new = ~frame["model_id"].isin(known)
    if not new.any():
        return False
    new_frame = frame if new.all() else frame[new]
    lifecycle = {
        "is_active": True,
        "first_seen_at": as_of,
        "updated_at": as_of,
        "last_changed_run_id": request.run_id,
    }
    columns = (*FRAME_COLUMNS, "stale_reason")
    copy_into(
        connection,
        f"COPY ai_models ({', '.join((*columns, *lifecycle))}) FROM STDIN",
        copy_chunks(new_frame, ai_models, columns, constants=lifecycle),
    )
    # The ids travel as one JSON array: binding 100,000 strings as text[] costs more.
    connection.execute(
        text(sql.RECORD_CREATED),
        {"source": request.source.name, "ids": json_text(new_frame["model_id"].tolist())},
    )
    if not new_frame["stale_reason"].notna().any():
        return False
    connection.execute(text(sql.MARK_NEW_STALE), {"source": request.source.name, "as_of": as_of})
    return True


def _record_meter_rules(connection: Connection, source: Source) -> None:
    """What prices this source's meters beyond tokens, for ai_model_cost()."""
    rules = [
        {"meter": meter, "path_pattern": rule.path_pattern, "unit_exponent": rule.unit_exponent}
        for meter, rule in sorted(source.meter_rules.items())
    ]
    connection.execute(
        text(sql.RECORD_METER_RULES), {"source": source.name, "rules": json_text(rules)}
    )
    connection.execute(
        text(sql.FORGET_METER_RULES), {"source": source.name, "meters": sorted(source.meter_rules)}
    )


def _guard_shrink(connection: Connection, request: SyncRequest) -> None:
    source = request.source.name
    active = connection.execute(
        select(func.count()).where(ai_models.c.source == source, ai_models.c.is_active)
    ).scalar_one()
    missing = connection.execute(
        text("SELECT count(*) FROM catalog_diff WHERE change = 'deactivated'")
    ).scalar_one()
    share = request.policy.max_deactivation_share
    if active and missing / active > share:
        raise SyncRefused(
            f"refusing to deactivate {missing} of {active} active {source} models "
            f"({missing / active:.0%} > the limit of {share:.0%}, "
            "MODEL_SYNC_MAX_DEACTIVATION_SHARE); the source may be serving a partial catalog. "
            "Nothing was written; the catalog is unchanged."
        )


def _assess_anomalies(
    connection: Connection, request: SyncRequest
) -> tuple[list[Finding], dict[Finding, dict[str, str]]]:
    """Every flagged price move and vanished tier list, and which refusals another source
    corroborates; raises if a refusal is neither corroborated nor accepted."""
    policy = request.policy
    price_changes = [
        PriceChange(model_id, column, old, new)
        for model_id, column, old, new in connection.execute(
            text(
                "SELECT model_id, field, old_price, new_price FROM field_diff "
                "WHERE change_type = 'price_changed' ORDER BY model_id, field"
            )
        )
    ]
    findings = assess_price_changes(price_changes, policy.fail_factor, policy.warn_factor)
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
    corroborated = _corroborate(connection, request, failures)
    refused = [f for f in failures if f not in corroborated]
    if refused and request.acceptance is None:
        listed = "\n".join(f"  - {f.describe()}" for f in refused)
        raise SyncRefused(
            f"refusing {len(refused)} implausible price change(s):\n{listed}\n"
            "Nothing was written; the catalog is unchanged. If these prices are real, re-run "
            "with accepted_by and accept_reason set (see README, 'Accepting flagged changes')."
        )
    return findings, corroborated


# The active gateway/list price of the same model (canonical id, user aliases first) at the
# other enabled sources.
_PEER_PRICES = """
WITH mine AS (
    SELECT coalesce(a.canonical_model_id, s.canonical_model_id) AS canonical_model_id
    FROM {staging} s
    LEFT JOIN model_aliases a ON a.source = s.source AND a.model_id = s.model_id
    WHERE s.model_id = :model_id
)
SELECT o.source, o.{column}
FROM ai_models o
LEFT JOIN model_aliases a ON a.source = o.source AND a.model_id = o.model_id
WHERE coalesce(a.canonical_model_id, o.canonical_model_id) = (SELECT canonical_model_id FROM mine)
  AND o.source <> :source AND o.source = ANY(:peers)
  AND o.is_active AND o.price_role IN ('gateway', 'list') AND o.{column} IS NOT NULL
ORDER BY o.source
"""


def _agrees(a: Decimal, b: Decimal, tolerance: Decimal) -> bool:
    if a == 0 or b == 0:
        return a == b
    return max(a, b) / min(a, b) - 1 <= tolerance


def _corroborate(
    connection: Connection, request: SyncRequest, failures: list[Finding]
) -> dict[Finding, dict[str, str]]:
    """The refused moves another enabled source already shows (same new price within the
    tolerance): accepted without a human, with the corroborating source recorded."""
    corroborated: dict[Finding, dict[str, str]] = {}
    if not request.peer_sources:
        return corroborated
    for finding in failures:
        if finding.field not in sql.PRICE_COLUMNS or finding.new is None:
            continue
        new = Decimal(finding.new)
        statement = _PEER_PRICES.format(staging=sql.STAGING_TABLE, column=finding.field)
        for peer, price in connection.execute(
            text(statement).bindparams(bindparam("peers", type_=ARRAY(Text))),
            {
                "model_id": finding.model_id,
                "source": request.source.name,
                "peers": list(request.peer_sources),
            },
        ):
            if _agrees(new, price, request.policy.tolerance):
                corroborated[finding] = {
                    **finding.as_dict(),
                    "corroborated_by": peer,
                    "their_price": format(price, "f"),
                }
                break
    return corroborated


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


def _check_request(request: SyncRequest) -> None:
    frame = request.models.frame
    if frame.empty:
        raise SyncRefused(
            f"the response has no valid models ({request.models.served} served, "
            f"{len(request.models.broken) + len(request.models.skipped)} failed validation); "
            "nothing was written and the catalog is unchanged"
        )
    if set(frame["source"]) != {request.source.name}:
        raise SyncRefused(f"the frame holds models of other sources than {request.source.name!r}")
    duplicated = frame.duplicated(list(sql.KEY_COLUMNS))
    if duplicated.any():
        raise SyncRefused(f"duplicate model ids: {list(frame[duplicated].model_id)}")


def sync_catalog(engine: Engine, request: SyncRequest, started_at: datetime) -> SyncResult:
    """Write one normalized response. Raises :class:`SyncRefused` when a guard trips."""
    clock = time.monotonic()
    _check_request(request)
    source = request.source.name
    with engine.begin() as connection:
        set_timeouts(connection, request.policy)
        # The diff joins whole catalogs: with the default 4 MB, a 40,000-model join spills to
        # disk in batches.
        set_local(connection, "work_mem", SYNC_WORK_MEM)
        take_sync_lock(connection, source, request.policy.concurrent_sync)
        as_of = _effective_time(connection, request)
        known = _known_models(connection, source)
        never_held = _stage(connection, request, known)
        connection.execute(text(sql.DIFF), {"source": source})
        _guard_shrink(connection, request)
        connection.execute(text(sql.FIELD_DIFF))
        connection.execute(
            text(sql.PRICE_POINT_DIFF),
            {"column_paths": sorted(request.source.column_price_paths)},
        )
        connection.execute(text(sql.STALE_CHANGES))
        findings, corroborated = _assess_anomalies(connection, request)

        skipped = [*request.models.skipped, *never_held]
        sync_id = start_run(connection, request.record(skipped), started_at)
        params = {"sync_id": sync_id, "run_id": request.run_id, "as_of": as_of, "source": source}
        new_stale = _insert_new_models(connection, request, known, as_of)
        _record_meter_rules(connection, request.source)
        connection.execute(text(sql.RECORD_CHANGES), params)
        if new_stale:
            connection.execute(text(sql.RECORD_NEW_STALE), params)
        connection.execute(text(sql.UPDATE_CHANGED), params)
        connection.execute(text(sql.UPDATE_STALE_MARKS), params)
        connection.execute(text(sql.DEACTIVATE), params)
        connection.execute(text(sql.VERSION_DIFF))
        connection.execute(text(sql.CLOSE_VERSIONS), params)
        versions_opened = connection.execute(text(sql.OPEN_VERSIONS), params).rowcount

        by_change: dict[str, list[str]] = {
            change: [] for change in ("created", "updated", "reactivated", "deactivated")
        }
        for model_id, change in connection.execute(
            text("SELECT model_id, change FROM catalog_diff WHERE change <> 'unchanged' ORDER BY 1")
        ):
            by_change[change].append(model_id)
        stale = stale_models(connection, source)
        total = len(request.models.frame) + len(request.models.broken) - len(never_held)
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
            failed=len(skipped),
            stale=len(stale),
        )
        change_counts, preview = _change_summary(connection, sync_id)
        webhook_events = 0
        if change_counts and request.webhook_urls:
            webhook_events = connection.execute(
                text(sql.OUTBOX).bindparams(bindparam("subscribers", type_=ARRAY(Text))),
                {
                    **params,
                    "event_type": sql.EVENT_TYPE,
                    "counts": json.dumps(counts.as_dict()),
                    "subscribers": list(request.webhook_urls),
                },
            ).rowcount
        active, inactive = catalog_stats(connection, source)
        duration_ms = round((time.monotonic() - clock) * 1000)
        accepted = [f for f in findings if f.severity == FAIL and f not in corroborated]
        warnings = [f for f in findings if f.severity != FAIL]
        finish_run(
            connection,
            sync_id,
            duration_ms=duration_ms,
            effective_at=as_of,
            anomalies=[f.as_dict() for f in accepted] or null(),
            warnings=[f.as_dict() for f in warnings] or null(),
            stale_models=stale or null(),
            corroborated=list(corroborated.values()) or null(),
            **counts.as_dict(),
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
        stale_models=stale,
        skipped=skipped,
        corroborated=list(corroborated.values()),
    )
