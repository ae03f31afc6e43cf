"""The COPY text encoder against a real Postgres: what goes in is what is stored.

Each case COPYs a normalized frame into a table with ai_models' frame columns (plus the
staging table's per-row marks, ``stale_reason`` and ``kept_columns``) and reads the rows back;
the expected values are the inputs themselves, never the encoder's output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import psycopg
import pytest
from sqlalchemy import ARRAY, Text

from model_sync.sources import get_source
from model_sync.sources.base import decode_json
from model_sync.store.copy_text import copy_chunks
from model_sync.store.tables import ai_models
from model_sync.transform import FRAME_COLUMNS, MARK_DTYPES, normalize_models
from model_sync_tests.snapshots import snapshot_models

VERCEL = get_source("vercel")
# The frame's catalog columns, then its marks; kept_columns is not an ai_models column, so its
# type is given the way the sync gives it for its staging table.
COLUMNS = (*FRAME_COLUMNS, *MARK_DTYPES)
EXTRA_TYPES = {"kept_columns": ARRAY(Text)}

NASTY_TEXT = 'tab\there, newline\nthere, return\r, back\\slash \\N, "quotes", {braces}, ünï ✓'
NASTY_TAGS = ["tool-use", 'say "hi"', "back\\slash", "a,b", "{x}", "tab\tnew\nline", "NULL"]


@pytest.fixture
def copy_table(db: psycopg.Connection) -> str:
    db.execute(
        f"CREATE TABLE copied AS SELECT {', '.join(FRAME_COLUMNS)}, stale_reason, "
        "CAST(NULL AS text[]) AS kept_columns, last_changed_run_id FROM ai_models WITH NO DATA"
    )
    db.commit()
    return "copied"


def copy_frame(db: psycopg.Connection, frame: pd.DataFrame, **kwargs) -> list[dict]:
    constants = kwargs.pop("constants", {"last_changed_run_id": "run-1"})
    columns = ", ".join((*COLUMNS, *constants))
    chunks = copy_chunks(
        frame, ai_models, COLUMNS, constants=constants, extra_types=EXTRA_TYPES, **kwargs
    )
    with db.cursor().copy(f"COPY copied ({columns}) FROM STDIN") as copy:
        for chunk in chunks:
            copy.write(chunk)
    db.commit()
    with db.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute("SELECT * FROM copied ORDER BY model_id").fetchall()


# A served time the transform cannot read: the model is kept with a stale reason that quotes
# the value (backslashes, a "\\N" COPY would read as NULL), and the columns it keeps.
STALE_CREATED = "to\tmorrow \\N"


def nasty_models() -> list[dict]:
    template = snapshot_models("models-2026-03-05.json")
    tiered = next(m for m in template if "input_tiers" in m.get("pricing", {}))
    plain = next(m for m in template if m.get("pricing") == {})
    return [
        {**tiered, "id": "acme/nasty", "name": NASTY_TEXT, "description": NASTY_TEXT,
         "tags": NASTY_TAGS, "unmodelled": {"big": 2**70, "text": NASTY_TEXT}},
        {**plain, "id": "acme/bare", "name": None, "description": None, "tags": []},
        {**plain, "id": "acme/stale", "created": STALE_CREATED, "context_window": "big"},
    ]  # fmt: skip


def test_every_column_survives_copy_exactly(db, copy_table):
    models = nasty_models()
    frame = normalize_models(models, VERCEL).frame
    assert list(frame["model_id"]) == ["acme/nasty", "acme/bare", "acme/stale"]
    bare, nasty, stale = copy_frame(db, frame)  # ordered by model_id

    assert nasty["model_name"] == NASTY_TEXT
    assert nasty["description"] == NASTY_TEXT
    assert nasty["capabilities"][: len(NASTY_TAGS)] == NASTY_TAGS
    # jsonb compares as JSON: the raw model, a 70-bit integer and escapes included.
    assert nasty["raw"] == json.loads(json.dumps(models[0]))
    assert nasty["pricing"] == models[0]["pricing"]
    assert nasty["input_tiers"] == frame.set_index("model_id").at["acme/nasty", "input_tiers"]
    assert nasty["cost_per_1m_input"] == Decimal(models[0]["pricing"]["input"]).scaleb(6)
    assert nasty["last_changed_run_id"] == "run-1"
    assert (nasty["canonical_model_id"], nasty["price_role"]) == ("acme/nasty", "gateway")

    assert bare["model_name"] is None and bare["description"] is None
    assert bare["cost_per_1m_input"] is None and bare["input_tiers"] is None

    # The marks: NULL and an empty array for clean rows; the reason text (which quotes the
    # served value with backslashes) and the kept columns, in order, for the stale one.
    assert (nasty["stale_reason"], nasty["kept_columns"]) == (None, [])
    assert (bare["stale_reason"], bare["kept_columns"]) == (None, [])
    assert stale["kept_columns"] == ["context_window", "gateway_created_at"]
    reason = frame.set_index("model_id").at["acme/stale", "stale_reason"]
    assert "\\" in reason and "\\N" in reason, reason  # the case exercises COPY escaping
    assert stale["stale_reason"] == reason
    assert stale["context_window"] is None and stale["gateway_created_at"] is None
    assert stale["raw"]["created"] == STALE_CREATED

    # Every other column, cell by cell, equals the frame's value.
    ordered = frame.sort_values("model_id").iterrows()
    for row, (_, expected) in zip((bare, nasty, stale), ordered, strict=True):
        for column in (
            "canonical_model_id",
            "price_role",
            "context_window",
            "max_output_tokens",
            "supports_vision",
            "cost_bucket",
        ):
            value = expected[column]
            assert row[column] == (None if pd.isna(value) else value), column
        for column in ("released_at", "gateway_created_at", "deprecated_at"):
            value = expected[column]
            assert row[column] == (None if pd.isna(value) else value.to_pydatetime()), column


def test_json_numbers_read_from_their_text_are_stored_as_those_numbers(db, copy_table):
    """Responses are decoded with JSON numbers as Decimals of their text (``decode_json``);
    the jsonb cells must hold those very numbers, beside an integer too wide for 64 bits."""
    served_input = "1.25e-06"
    long_rate = "0.12345678901234567890123"  # more digits than a binary float holds
    body = (
        '{"object":"list","data":['
        '{"id":"acme/decimal","pricing":{"input":' + served_input + ',"output":"0.000002"},'
        '"x":{"rate":' + long_rate + ',"tiny":5e-324}},'
        '{"id":"acme/wide","pricing":{"input":0.000003},"x":{"rate":'
        + long_rate
        + ',"big":'
        + str(2**70)
        + "}}]}"
    )
    frame = normalize_models(decode_json(body.encode())["data"], VERCEL).frame
    assert list(frame["model_id"]) == ["acme/decimal", "acme/wide"]
    copy_frame(db, frame)
    rows = db.execute(
        "SELECT model_id, raw #>> '{pricing,input}', pricing ->> 'input', raw #>> '{x,rate}', "
        "raw #>> '{x,tiny}', raw #>> '{x,big}', jsonb_typeof(raw #> '{pricing,input}'), "
        "cost_per_1m_input::text FROM copied ORDER BY model_id"
    ).fetchall()
    # Postgres prints a jsonb number in plain notation, exactly: written out by hand here.
    tiny = "0." + "0" * 323 + "5"
    assert rows == [
        ("acme/decimal", "0.00000125", "0.00000125", long_rate, tiny, None, "number", "1.25"),
        ("acme/wide", "0.000003", "0.000003", long_rate, None, str(2**70), "number", "3"),
    ]


@pytest.mark.parametrize("chunk_rows", [1, 2, 7, 10_000])
def test_chunking_changes_nothing(db, copy_table, chunk_rows):
    models = snapshot_models("models-2026-03-05.json")[:7]
    rows = copy_frame(db, normalize_models(models, VERCEL).frame, chunk_rows=chunk_rows)
    assert [row["model_id"] for row in rows] == sorted(m["id"] for m in models)
    assert [row["raw"] for row in rows] == sorted(models, key=lambda m: m["id"])


def test_a_float_price_is_refused_naming_the_column():
    frame = normalize_models(snapshot_models("models-2026-03-05.json")[:3], VERCEL).frame
    frame["cost_per_1m_input"] = frame["cost_per_1m_input"].astype(object)
    frame.loc[frame.index[0], "cost_per_1m_input"] = 0.12
    with pytest.raises(TypeError, match="cost_per_1m_input.*float"):
        list(copy_chunks(frame, ai_models, FRAME_COLUMNS))


def test_a_naive_timestamp_is_refused():
    frame = normalize_models(snapshot_models("models-2026-03-05.json")[:3], VERCEL).frame
    frame["released_at"] = frame["released_at"].dt.tz_localize(None)
    with pytest.raises(TypeError, match="naive timestamps in 'released_at'"):
        list(copy_chunks(frame, ai_models, FRAME_COLUMNS))


def test_constants_are_appended_to_every_row(db, copy_table):
    frame = normalize_models(snapshot_models("models-2026-03-05.json")[:4], VERCEL).frame
    stamp = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    db.execute("ALTER TABLE copied ADD COLUMN first_seen_at timestamptz")
    db.commit()
    rows = copy_frame(
        db, frame, constants={"last_changed_run_id": "run\t2", "first_seen_at": stamp}
    )
    assert {(row["last_changed_run_id"], row["first_seen_at"]) for row in rows} == {
        ("run\t2", stamp)
    }
