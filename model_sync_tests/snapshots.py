"""The recorded real gateway responses vendored in ``model_sync_tests/fixtures``.

One folder per source (``vercel/``, ``openrouter/``, ``models-dev/``, ``litellm/``); where each
file came from is in ``fixtures/README.md``. The tests need nothing outside the repository.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
VERCEL_DIR = FIXTURES_DIR / "vercel"
OPENROUTER_DIR = FIXTURES_DIR / "openrouter"
MODELS_DEV_DIR = FIXTURES_DIR / "models-dev"
LITELLM_DIR = FIXTURES_DIR / "litellm"


def fixture_path(relative: str) -> Path:
    """A vendored fixture by its path under ``fixtures/``.

    E.g. ``fixture_path("openrouter/models-2026-07-14.json")``.

    Raises ``FileNotFoundError`` naming the path when there is no such file, rather than letting
    a test fail later on a confusing read.
    """
    path = FIXTURES_DIR / relative
    if not path.is_file():
        raise FileNotFoundError(f"no vendored fixture {relative!r} (looked for {path})")
    return path


@cache
def fixture_bytes(relative: str) -> bytes:
    """The exact bytes of a vendored fixture (cached; do not mutate)."""
    return fixture_path(relative).read_bytes()


def fixture_json(relative: str) -> Any:
    """A fresh parse of a vendored JSON fixture (callers may mutate it)."""
    return json.loads(fixture_bytes(relative))


@cache
def vercel_snapshots() -> list[tuple[str, datetime]]:
    """(file name, capture time) of every Vercel snapshot, oldest first (per snapshots.csv)."""
    with fixture_path("vercel/snapshots.csv").open(newline="") as handle:
        rows = [
            (row["file"], datetime.fromisoformat(row["captured_at_utc"].replace("Z", "+00:00")))
            for row in csv.DictReader(handle)
        ]
    return sorted(rows, key=lambda row: row[1])


def snapshot_path(name: str) -> Path:
    """A Vercel snapshot by file name (``"models-2026-03-05.json"``)."""
    return fixture_path(f"vercel/{name}")


def snapshot_bytes(name: str) -> bytes:
    return fixture_bytes(f"vercel/{name}")


def snapshot_models(name: str) -> list[dict[str, Any]]:
    """A fresh copy of the snapshot's ``data`` list (callers may mutate it)."""
    return fixture_json(f"vercel/{name}")["data"]
