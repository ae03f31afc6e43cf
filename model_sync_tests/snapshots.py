"""The recorded real gateway responses in ``../shared/fixtures`` (read-only, beside the repo)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT.parent / "shared" / "fixtures"
VERCEL_DIR = FIXTURES_DIR / "vercel"


def _require_fixtures() -> None:
    if not (VERCEL_DIR / "snapshots.csv").is_file():
        raise RuntimeError(
            f"the recorded gateway responses are missing: expected {VERCEL_DIR}/snapshots.csv. "
            "The tests read ../shared/fixtures beside the repository root; check out the "
            "project next to its shared/ folder."
        )


@cache
def vercel_snapshots() -> list[tuple[str, datetime]]:
    """(file name, capture time) of every Vercel snapshot, oldest first (per snapshots.csv)."""
    _require_fixtures()
    with (VERCEL_DIR / "snapshots.csv").open(newline="") as handle:
        rows = [
            (row["file"], datetime.fromisoformat(row["captured_at_utc"].replace("Z", "+00:00")))
            for row in csv.DictReader(handle)
        ]
    return sorted(rows, key=lambda row: row[1])


def snapshot_path(name: str) -> Path:
    _require_fixtures()
    return VERCEL_DIR / name


@cache
def snapshot_bytes(name: str) -> bytes:
    return snapshot_path(name).read_bytes()


def snapshot_models(name: str) -> list[dict[str, Any]]:
    """A fresh copy of the snapshot's ``data`` list (callers may mutate it)."""
    return json.loads(snapshot_bytes(name))["data"]
