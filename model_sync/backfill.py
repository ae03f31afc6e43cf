"""Replay saved responses into the catalog and its history, oldest first: a folder of files
(``model-sync backfill``) or the response archive (``model-sync rebuild``).

A new deployment would otherwise start with an empty history, and a transform fix would only
apply from today. Each response is synced exactly like a live one — through
``service.sync_response``, the same path as every other entry point — but its versions open at
the time it was captured, so "what did model X cost last March" has an answer from day one.

Capture times of files come from a ``snapshots.csv`` (``file,captured_at_utc``) in the folder
when there is one, else from the file name (``models-2025-10-13.json``,
``models-2025-10-13-1428.json`` = 14:28 UTC). Archived bodies carry their own.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from model_sync.gateway import FetchedBody, GatewayFetcher
from model_sync.service import SyncOutcome, sync_response
from model_sync.settings import SyncPolicy
from model_sync.sources import SOURCES
from model_sync.sources.base import Source
from model_sync.store import archive

_NAME_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[-T_](\d{2})(\d{2}))?")


@dataclass(frozen=True)
class SavedResponse:
    path: Path
    captured_at: datetime


def saved_responses(folder: Path) -> list[SavedResponse]:
    """Every ``*.json`` response in ``folder`` with its capture time, oldest first."""
    folder = Path(folder)
    listed: dict[str, datetime] = {}
    index = folder / "snapshots.csv"
    if index.is_file():
        with index.open(newline="") as handle:
            for row in csv.DictReader(handle):
                listed[row["file"]] = datetime.fromisoformat(
                    row["captured_at_utc"].replace("Z", "+00:00")
                )
    responses = []
    for path in sorted(folder.glob("*.json")):
        captured = listed.get(path.name) or _date_from_name(path.name)
        if captured is None:
            raise ValueError(
                f"{path}: no capture time; list it in snapshots.csv or name it "
                "like models-YYYY-MM-DD[-HHMM].json"
            )
        responses.append(SavedResponse(path, captured))
    return sorted(responses, key=lambda response: response.captured_at)


def _date_from_name(name: str) -> datetime | None:
    match = _NAME_DATE.search(name)
    if not match:
        return None
    year, month, day, hour, minute = match.groups()
    return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=UTC)


def latest_effective_time(engine: Engine, source: str) -> datetime | None:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT max(valid_from) FROM ai_model_versions WHERE source = :source"),
            {"source": source},
        ).scalar_one()


Report = Callable[[str], None]


def _replay(
    engine: Engine,
    responses: Iterable[tuple[Source, FetchedBody, str]],
    *,
    policy: SyncPolicy,
    archive_bodies: bool,
    report: Report,
) -> list[SyncOutcome]:
    """Sync each (source, body dated by its capture time, label) in order; a body older than
    the source's history is skipped (history is append-only, so replaying twice adds nothing)."""
    outcomes = []
    for source, fetched, label in responses:
        latest = latest_effective_time(engine, source.name)
        if latest is not None and fetched.fetched_at < latest:
            report(f"skip {label}: older than the history ({latest.isoformat()})")
            continue
        outcome = sync_response(
            engine,
            source,
            fetched,
            run_id=f"backfill:{label}",
            policy=policy,
            effective_at=fetched.fetched_at,
            archive_body=archive_bodies,
        )
        counts = outcome.counts
        versions = outcome.result.versions_opened if outcome.result else 0
        report(
            f"{label} @ {fetched.fetched_at.isoformat()}: "
            f"created={counts.created} updated={counts.updated} "
            f"deactivated={counts.deactivated} reactivated={counts.reactivated} "
            f"failed={counts.failed} stale={counts.stale} versions_opened={versions}"
            + (" (unchanged body)" if outcome.unchanged_body else "")
        )
        for finding in outcome.result.warnings if outcome.result else []:
            report(f"  warning: {finding.describe()}")
        outcomes.append(outcome)
    return outcomes


def backfill(
    engine: Engine,
    folder: Path,
    *,
    source: Source,
    policy: SyncPolicy | None = None,
    report: Report = print,
) -> list[SyncOutcome]:
    """Sync each saved response of ``folder`` in capture order (archiving each body)."""

    def responses():
        for saved in saved_responses(folder):
            fetched = GatewayFetcher(url=str(saved.path)).fetch()
            assert isinstance(fetched, FetchedBody)
            dated = FetchedBody.of(
                saved.path.resolve().as_uri(), fetched.body, fetched_at=saved.captured_at
            )
            yield source, dated, saved.path.name

    return _replay(
        engine, responses(), policy=policy or SyncPolicy(), archive_bodies=True, report=report
    )


def rebuild(
    engine: Engine,
    *,
    archive_engine: Engine | None = None,
    policy: SyncPolicy | None = None,
    report: Report = print,
) -> list[SyncOutcome]:
    """Rebuild the catalog's history from the response archive, in capture order.

    With ``archive_engine`` (another catalog database), its archive is first copied into this
    one, so the fresh catalog keeps the bodies its history came from.
    """
    if archive_engine is not None:
        copied = sum(1 for _ in archive.copy_archive(archive_engine, engine))
        report(f"copied {copied} captures into this catalog's archive")

    def responses():
        for capture in archive.captures(engine):
            source = SOURCES.get(capture.source)
            if source is None:
                report(f"skip {capture.sha256[:12]}: unknown source {capture.source!r}")
                continue
            body = archive.load_body(engine, capture.sha256)
            fetched = FetchedBody.of(capture.url, body, fetched_at=capture.fetched_at)
            yield source, fetched, f"{capture.source}:{capture.sha256[:12]}"

    return _replay(
        engine, responses(), policy=policy or SyncPolicy(), archive_bodies=False, report=report
    )
