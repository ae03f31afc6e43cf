"""Load a folder of saved gateway responses into the catalog and its history, oldest first.

A new deployment would otherwise start with an empty history. Each file is synced exactly
like a live response, but its versions open at the time the file was captured, so
"what did model X cost last March" has an answer from day one.

Capture times come from a ``snapshots.csv`` (``file,captured_at_utc``) in the folder when
there is one, else from the file name (``models-2025-10-13.json``,
``models-2025-10-13-1428.json`` = 14:28 UTC).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, text

from model_sync.gateway import GatewayFetcher
from model_sync.store.sync import SyncRequest, SyncResult, sync_catalog
from model_sync.transform import normalize_models

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


def backfill(
    engine: Engine,
    folder: Path,
    *,
    source: str = "vercel",
    max_deactivation_share: float = 0.5,
    anomaly_fail_factor: Decimal = Decimal(10),
    anomaly_warn_factor: Decimal = Decimal(3),
    report: Callable[[str], None] = print,
) -> list[SyncResult]:
    """Sync each saved response in capture order; files older than the history are skipped."""
    results = []
    for response in saved_responses(folder):
        latest = latest_effective_time(engine, source)
        if latest is not None and response.captured_at < latest:
            report(f"skip {response.path.name}: older than the history ({latest.isoformat()})")
            continue
        fetched = GatewayFetcher(url=str(response.path)).fetch()
        catalog = normalize_models(fetched.models, source=source)
        result = sync_catalog(
            engine,
            SyncRequest(
                frame=catalog.frame,
                source=source,
                run_id=f"backfill:{response.path.name}",
                source_url=response.path.resolve().as_uri(),
                body_sha256=fetched.sha256,
                skipped=[skipped.as_record() for skipped in catalog.skipped],
                effective_at=response.captured_at,
                max_deactivation_share=max_deactivation_share,
                anomaly_fail_factor=anomaly_fail_factor,
                anomaly_warn_factor=anomaly_warn_factor,
            ),
            started_at=datetime.now(UTC),
        )
        counts = result.counts
        report(
            f"{response.path.name} @ {response.captured_at.isoformat()}: "
            f"created={counts.created} updated={counts.updated} "
            f"deactivated={counts.deactivated} reactivated={counts.reactivated} "
            f"failed={counts.failed} versions_opened={result.versions_opened}"
        )
        for finding in result.warnings:
            report(f"  warning: {finding.describe()}")
        results.append(result)
    return results
