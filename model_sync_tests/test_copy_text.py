"""The COPY text encoder against a real Postgres: what goes in is what is stored.

Each case COPYs a normalized frame into a table with ai_models' frame columns and reads the
rows back; the expected values are the inputs themselves, never the encoder's output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import psycopg
import pytest

from model_sync.store.copy_text import copy_chunks
from model_sync.store.tables import ai_models
from model_sync.transform import FRAME_COLUMNS, normalize_models
from model_sync_tests.snapshots import snapshot_models

NASTY_TEXT = 'tab\there, newline\nthere, return\r, back\\slash \\N, "quotes", {braces}, ünï ✓'
NASTY_TAGS = ["tool-use", 'say "hi"', "back\\slash", "a,b", "{x}", "tab\tnew\nline", "NULL"]


@pytest.fixture
def copy_table(db: psycopg.Connection) -> str:
    db.execute(
        f"CREATE TABLE copied AS SELECT {', '.join(FRAME_COLUMNS)}, "
        "last_changed_run_id FROM ai_models WITH NO DATA"
    )
    db.commit()
    return "copied"


def copy_frame(db: psycopg.Connection, frame: pd.DataFrame, **kwargs) -> list[dict]:
    constants = kwargs.pop("constants", {"last_changed_run_id": "run-1"})
    columns = ", ".join((*FRAME_COLUMNS, *constants))
    with db.cursor().copy(f"COPY copied ({columns}) FROM STDIN") as copy:
        for chunk in copy_chunks(frame, ai_models, FRAME_COLUMNS, constants=constants, **kwargs):
            copy.write(chunk)
    db.commit()
    with db.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute("SELECT * FROM copied ORDER BY model_id").fetchall()


def nasty_models() -> list[dict]:
    template = snapshot_models("models-2026-03-05.json")
    tiered = next(m for m in template if "input_tiers" in m.get("pricing", {}))
    plain = next(m for m in template if m.get("pricing") == {})
    return [
        {**tiered, "id": "acme/nasty", "name": NASTY_TEXT, "description": NASTY_TEXT,
         "tags": NASTY_TAGS, "unmodelled": {"big": 2**70, "text": NASTY_TEXT}},
        {**plain, "id": "acme/bare", "name": None, "description": None, "tags": []},
    ]  # fmt: skip


def test_every_column_survives_copy_exactly(db, copy_table):
    models = nasty_models()
    frame = normalize_models(models).frame
    bare, nasty = copy_frame(db, frame)  # ordered by model_id

    assert nasty["model_name"] == NASTY_TEXT
    assert nasty["description"] == NASTY_TEXT
    assert nasty["capabilities"][: len(NASTY_TAGS)] == NASTY_TAGS
    # jsonb compares as JSON: the raw model, a 70-bit integer and escapes included.
    assert nasty["raw"] == json.loads(json.dumps(models[0]))
    assert nasty["pricing"] == models[0]["pricing"]
    assert nasty["input_tiers"] == frame.set_index("model_id").at["acme/nasty", "input_tiers"]
    assert nasty["cost_per_1m_input"] == Decimal(models[0]["pricing"]["input"]).scaleb(6)
    assert nasty["last_changed_run_id"] == "run-1"

    assert bare["model_name"] is None and bare["description"] is None
    assert bare["cost_per_1m_input"] is None and bare["input_tiers"] is None
    # Every other column, cell by cell, equals the frame's value.
    ordered = frame.sort_values("model_id").iterrows()
    for row, (_, expected) in zip((bare, nasty), ordered, strict=True):
        for column in ("context_window", "max_output_tokens", "supports_vision", "cost_bucket"):
            value = expected[column]
            assert row[column] == (None if pd.isna(value) else value), column
        for column in ("released_at", "gateway_created_at", "deprecated_at"):
            value = expected[column]
            assert row[column] == (None if pd.isna(value) else value.to_pydatetime()), column


@pytest.mark.parametrize("chunk_rows", [1, 2, 7, 10_000])
def test_chunking_changes_nothing(db, copy_table, chunk_rows):
    models = snapshot_models("models-2026-03-05.json")[:7]
    rows = copy_frame(db, normalize_models(models).frame, chunk_rows=chunk_rows)
    assert [row["model_id"] for row in rows] == sorted(m["id"] for m in models)
    assert [row["raw"] for row in rows] == sorted(models, key=lambda m: m["id"])


def test_a_float_price_is_refused_naming_the_column():
    frame = normalize_models(snapshot_models("models-2026-03-05.json")[:3]).frame
    frame["cost_per_1m_input"] = frame["cost_per_1m_input"].astype(object)
    frame.loc[frame.index[0], "cost_per_1m_input"] = 0.12
    with pytest.raises(TypeError, match="cost_per_1m_input.*float"):
        list(copy_chunks(frame, ai_models, FRAME_COLUMNS))


def test_a_naive_timestamp_is_refused():
    frame = normalize_models(snapshot_models("models-2026-03-05.json")[:3]).frame
    frame["released_at"] = frame["released_at"].dt.tz_localize(None)
    with pytest.raises(TypeError, match="naive timestamps in 'released_at'"):
        list(copy_chunks(frame, ai_models, FRAME_COLUMNS))


def test_constants_are_appended_to_every_row(db, copy_table):
    frame = normalize_models(snapshot_models("models-2026-03-05.json")[:4]).frame
    stamp = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    db.execute("ALTER TABLE copied ADD COLUMN first_seen_at timestamptz")
    db.commit()
    rows = copy_frame(
        db, frame, constants={"last_changed_run_id": "run\t2", "first_seen_at": stamp}
    )
    assert {(row["last_changed_run_id"], row["first_seen_at"]) for row in rows} == {
        ("run\t2", stamp)
    }
