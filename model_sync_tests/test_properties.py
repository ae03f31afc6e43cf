"""Property-based and hostile-input tests: the transform never crashes, and what it keeps stores.

``test_transform.py`` breaks one chosen field at a time; a gateway breaks fields nobody chose.
Here hypothesis replaces random fields of real recorded models with arbitrary JSON (NaN,
infinities, huge integers, NUL, lone surrogates, nested containers) and mixes in entries that
are arbitrary JSON altogether. Whatever comes in, one bad model must cost only itself:
``normalize_models`` must account for every entry exactly once — a frame row (stale when an
optional field could not be read), a broken model (a price that cannot be read, or a value
Postgres cannot store), or skipped (no usable id, a repeated id, not an object) — keep every
untouched real model, and hand the loader only finite, non-negative prices in the declared
frame shape. Which of the three each entry becomes is predicted here from the rules in
``transform.py``'s docstring with hand-written checks of the raw JSON. A second property pushes
the same catalogs through a real sync, because a model the transform keeps but Postgres cannot
store aborts the whole transaction; it also checks that a broken model the catalog already
holds keeps its stored row (active, stale) and that kept columns keep their stored values.

The table-driven tests then store hostile model ids and every defined price form through the
real sync and read back exactly what Postgres holds.

Hypothesis profiles (applied to this module's property tests only, so other modules keep their
own settings):

- ``model_sync_quick`` (the default): 300 fuzzed catalogs for the pure property and 50 for the
  database property; the whole module runs in about a minute.
- ``thorough``: ``HYPOTHESIS_PROFILE=thorough .venv/bin/pytest
  model_sync_tests/test_properties.py`` runs 10,000 fuzzed catalogs through the transform and
  1,666 through the database (about a quarter of an hour on two cores).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from sqlalchemy import Engine, event

from model_sync.settings import SyncPolicy
from model_sync.sources import get_source
from model_sync.sources.base import decode_json
from model_sync.store import database
from model_sync.store.statements import CONTENT_COLUMNS, PRICE_COLUMNS, TIER_COLUMNS
from model_sync.store.sync import Acceptance, SyncRequest, SyncResult, sync_catalog
from model_sync.transform import (
    FRAME_COLUMNS,
    FRAME_DTYPES,
    BrokenModel,
    NormalizedModels,
    normalize_models,
)
from model_sync_tests.conftest import _drop, _new_database, _url_for
from model_sync_tests.snapshots import snapshot_models, vercel_snapshots

# --- hypothesis profiles -----------------------------------------------------------------

_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "model_sync_quick", max_examples=300, deadline=None, suppress_health_check=_RELAXED
)
settings.register_profile(
    "thorough", max_examples=10_000, deadline=None, suppress_health_check=_RELAXED
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "model_sync_quick")
# The pure transform is cheap; a sync costs a transaction, so the database property runs a
# sixth as many catalogs (50 by default, 1,666 with "thorough").
TRANSFORM_SETTINGS = settings(settings.get_profile(PROFILE))
DATABASE_SETTINGS = settings(
    TRANSFORM_SETTINGS, max_examples=max(10, TRANSFORM_SETTINGS.max_examples // 6)
)
# pytest-timeout's 300 s suits the default; 10,000 catalogs take several minutes.
PROPERTY_TIMEOUT = 300 if TRANSFORM_SETTINGS.max_examples <= 1_000 else 3_600

SOURCE = "vercel"
VERCEL = get_source(SOURCE)
LATEST = "models-2026-03-05.json"
NEIGHBOUR_ID = "openai/gpt-5"
MODEL_FIELDS = (
    "id",
    "name",
    "owned_by",
    "description",
    "type",
    "context_window",
    "max_tokens",
    "created",
    "released",
    "deprecated_at",
    "tags",
    "pricing",
)
PRICING_FIELDS = (
    "input",
    "output",
    "input_cache_read",
    "input_cache_write",
    "web_search",
    *TIER_COLUMNS,
)


def _distinct_fixture_models() -> list[dict[str, Any]]:
    """Every distinct model of every recorded snapshot (ids repeat across snapshots)."""
    seen: dict[str, dict[str, Any]] = {}
    for name, _ in vercel_snapshots():
        for model in snapshot_models(name):
            seen.setdefault(json.dumps(model, sort_keys=True), model)
    return list(seen.values())


FIXTURE_MODELS = _distinct_fixture_models()
# Pricing objects the real gateway served (each read cleanly by test_transform), by JSON text.
REAL_PRICINGS = frozenset(
    json.dumps(model["pricing"], sort_keys=True) for model in FIXTURE_MODELS if "pricing" in model
)

# --- strategies: arbitrary JSON, biased towards the values validators get wrong ----------

TRICKY_STRINGS = [
    "",
    " ",
    "NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "0",
    "3e-6",
    "1e999999999",
    "1e-999999999",
    "0." + "0" * 1000 + "1",
    "9" * 5000,
    "１２",
    "1_000",
    "2025-01-01T00:00:00Z",
    "2025-13-01",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "\u2060",
    "\u202e",
    "e\u0301",
    "\U0001f916",
    "\ufeff",
    "\\N",
    "'; DROP TABLE ai_models; --",
]
TRICKY_INTS = [
    -1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**400,
    -(10**400),
    253_402_300_799,
    253_402_300_800,
]
# Keys that collide with pydantic/BaseModel internals or with the fields the models declare.
TRICKY_KEYS = [
    "__class__",
    "__dict__",
    "__init__",
    "__pydantic_extra__",
    "model_config",
    "model_fields",
    "model_extra",
    "cost",
    "min",
    "max",
    *MODEL_FIELDS,
    *PRICING_FIELDS,
]

# Every code point, surrogates and controls included (characters() leaves surrogates out
# unless told otherwise, and even then draws them rarely).
ALPHABET = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs", "Cc", "Cf", "Mn", "Zs"]),
)
TEXT = st.text(ALPHABET, max_size=12)
DECIMAL_TEXT = st.from_regex(
    r"[+-]?(?:\d{1,4}(?:\.\d{0,30})?|\.\d{1,30})(?:[eE][+-]?\d{1,4})?", fullmatch=True
)


@st.composite
def iso_times(draw: st.DrawFn) -> str:
    """ISO-8601 text over the whole datetime range, with any UTC offset (or none)."""
    moment = draw(st.datetimes())
    offset_minutes = draw(st.none() | st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    if offset_minutes is not None:
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    return moment.isoformat()


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(TRICKY_INTS),
    st.floats(),  # NaN, ±inf, -0.0, subnormals and huge values included
    TEXT,
    DECIMAL_TEXT,
    iso_times(),
    st.sampled_from(TRICKY_STRINGS),
)
KEYS = TEXT | st.sampled_from(TRICKY_KEYS)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=8,
)
# A replaced field gets a known troublemaker half of the time: uniform JSON alone would need
# tens of thousands of catalogs to put 10**400 into "created" or NaN into an unknown key.
TRICKY_NUMBERS_AND_TIMES = [
    *TRICKY_INTS,
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    1e308,
    5e-324,
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
]
REPLACEMENTS = st.one_of(
    st.sampled_from(TRICKY_NUMBERS_AND_TIMES), st.sampled_from(TRICKY_STRINGS), SCALARS, JSON_VALUES
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside a JSON value, parents before children."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    paths = []
    for key, item in items:
        paths.append((*prefix, key))
        paths.extend(paths_of(item, (*prefix, key)))
    return paths


UNKNOWN_KEY = "x_unmodelled"


def mutation_targets(model: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Existing paths, the declared fields a real model may lack, and keys nobody declared.

    Unknown keys matter: the models allow extra fields, so their values travel unvalidated
    into the stored JSONB.
    """
    targets = set(paths_of(model)) | {(field,) for field in MODEL_FIELDS} | {(UNKNOWN_KEY,)}
    if isinstance(model.get("pricing"), dict):
        targets |= {("pricing", field) for field in (*PRICING_FIELDS, UNKNOWN_KEY)}
        for tier_key in TIER_COLUMNS:
            tiers = model["pricing"].get(tier_key)
            if isinstance(tiers, list) and tiers and isinstance(tiers[0], dict):
                targets.add(("pricing", tier_key, 0, UNKNOWN_KEY))
    return sorted(targets, key=repr)


_DELETE = object()


def _holds(container: Any, key: Any) -> bool:
    """Whether ``container[key]`` exists (dict key, or in-range list index)."""
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and isinstance(key, int) and key < len(container)


def set_path(model: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    """Replace (or delete) the value at ``path``; a path an earlier edit removed is ignored."""
    target: Any = model
    for part in path[:-1]:
        if not _holds(target, part):
            return
        target = target[part]
    last = path[-1]
    settable = isinstance(target, dict) and isinstance(last, str)
    if not (settable or _holds(target, last)):
        return
    if value is _DELETE:
        if settable:
            target.pop(last, None)
        else:
            del target[last]
    else:
        target[last] = value


@st.composite
def mutated_models(draw: st.DrawFn) -> dict[str, Any]:
    """A real recorded model with one to three random fields replaced by arbitrary JSON."""
    model = copy.deepcopy(draw(st.sampled_from(FIXTURE_MODELS)))
    targets = mutation_targets(model)
    # Half the picks go to declared fields, which a uniform pick would mostly miss among the
    # many paths inside descriptions, tag lists and tiers.
    declared = [path for path in targets if len(path) == 1 or path[0] == "pricing"]
    paths = st.sampled_from(declared) | st.sampled_from(targets)
    for path in draw(st.lists(paths, min_size=1, max_size=3)):
        deleting = draw(st.integers(0, 9)) == 0
        set_path(model, path, _DELETE if deleting else draw(REPLACEMENTS))
    return model


@st.composite
def tricky_models(draw: st.DrawFn) -> dict[str, Any]:
    """A real model with one declared (or unknown) field set to a known troublemaker.

    The cheap, sharp probe: a crash class found this way shows up in most default runs,
    where the free-form mutations above may need thousands of catalogs to hit it.
    """
    model = copy.deepcopy(draw(st.sampled_from(FIXTURE_MODELS)))
    declared = [path for path in mutation_targets(model) if len(path) == 1 or path[0] == "pricing"]
    value = draw(st.sampled_from(TRICKY_NUMBERS_AND_TIMES) | st.sampled_from(TRICKY_STRINGS))
    set_path(model, draw(st.sampled_from(declared)), value)
    return model


MODEL_SHAPED = st.fixed_dictionaries(
    {"id": TEXT | st.sampled_from(TRICKY_STRINGS)},
    optional={field: JSON_VALUES for field in MODEL_FIELDS[1:]},
)

# (kind, entry): "valid" entries are real models left untouched; the others promise nothing.
ENTRIES = st.one_of(
    st.sampled_from(FIXTURE_MODELS).map(lambda model: ("valid", copy.deepcopy(model))),
    mutated_models().map(lambda model: ("mutated", model)),
    tricky_models().map(lambda model: ("mutated", model)),
    JSON_VALUES.map(lambda value: ("arbitrary", value)),
    MODEL_SHAPED.map(lambda value: ("arbitrary", value)),
)
CATALOGS = st.lists(ENTRIES, max_size=6)


# --- the expected outcome of one entry, from the rules in transform.py's docstring --------

# Vercel's optional fields and the catalog columns each feeds (a broken one keeps them).
FIELD_COLUMNS = {
    "name": ("model_name",),
    "owned_by": ("owned_by", "provider"),
    "description": ("description",),
    "type": ("model_type", "capabilities"),
    "context_window": ("context_window",),
    "max_tokens": ("max_output_tokens",),
    "created": ("gateway_created_at",),
    "released": ("released_at",),
    "deprecated_at": ("deprecated_at",),
    "tags": ("capabilities", "supports_function_calling", "supports_vision", "supports_reasoning"),
}
TEXT_FIELDS = ("name", "owned_by", "description", "type")
COUNT_FIELDS = ("context_window", "max_tokens")
TIME_FIELDS = ("created", "released", "deprecated_at")
MAX_BIGINT = 2**63 - 1
UNIX_LIMIT = 10**17  # unix numbers from here on are refused (past microseconds of year 5138)
MARKS = {"stale_reason": "object", "kept_columns": "object"}


def usable_id(raw: dict[str, Any]) -> bool:
    """A non-blank string of at most 1000 UTF-8 bytes (a lone surrogate counts as 3)."""
    model_id = raw.get("id")
    return (
        isinstance(model_id, str)
        and bool(model_id.strip())
        and len(model_id.encode("utf-8", "surrogatepass")) <= 1000
    )


def unstorable(value: Any) -> bool:
    """What Postgres text/jsonb refuse: NUL or a lone surrogate in any string or key, or a
    non-finite number."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(unstorable(key) or unstorable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(unstorable(item) for item in value)
    return False


def pricing_known_valid(raw: dict[str, Any]) -> bool:
    """No pricing, or one the real gateway served: nothing in it can break the model."""
    pricing = raw.get("pricing")
    return pricing is None or json.dumps(pricing, sort_keys=True) in REAL_PRICINGS


def field_verdict(field: str, value: Any) -> bool | None:
    """Whether an optional field's value is clearly readable (True), clearly not (False), or
    neither is claimed here (None: time strings, which may be ISO-8601 or digits)."""
    if value is None:
        return True
    if field in TEXT_FIELDS:
        return isinstance(value, str)
    if field == "tags":
        return isinstance(value, list) and all(isinstance(tag, str) for tag in value)
    if isinstance(value, bool | list | dict | str):
        if field in TIME_FIELDS and isinstance(value, str) and value.strip():
            return None
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if field in COUNT_FIELDS:
        # A count is a whole number: 128000.0 is one, 1.5 is not.
        return value == int(value) and 0 <= int(value) <= MAX_BIGINT
    return 0 <= value < UNIX_LIMIT  # a unix time in s, ms or µs


def names_field(reason: str, field: str) -> bool:
    """Whether ``reason`` names ``field`` as a whole dotted path, not as part of another."""
    return re.search(rf"(?<![\w.]){re.escape(field)}(?!\w)", reason) is not None


# --- invariants --------------------------------------------------------------------------


def assert_valid_price(value: Any, where: str) -> None:
    """None, or a finite, non-negative, unsigned Decimal (the canonical zero is unsigned)."""
    if value is None:
        return
    assert isinstance(value, Decimal), f"{where}: {value!r} is not a Decimal"
    assert value.is_finite(), f"{where}: {value!r} is not finite"
    assert value >= 0 and not value.is_signed(), f"{where}: {value!r} is negative"


def outcomes(catalog: NormalizedModels, count: int) -> tuple[dict, dict, list[int]]:
    """(skipped by index, broken by index, indices that became frame rows): each input index
    is exactly one of the three."""
    skipped = {entry.index: entry for entry in catalog.skipped}
    broken = {entry.index: entry for entry in catalog.broken}
    assert len(skipped) == len(catalog.skipped), "an index was skipped twice"
    assert len(broken) == len(catalog.broken), "an index was broken twice"
    assert not skipped.keys() & broken.keys(), "an index was both skipped and broken"
    assert all(0 <= index < count for index in [*skipped, *broken])
    assert all(isinstance(entry, BrokenModel) for entry in catalog.broken)
    assert not any(isinstance(entry, BrokenModel) for entry in catalog.skipped)
    kept = [index for index in range(count) if index not in skipped and index not in broken]
    assert len(catalog.frame) == len(kept), "an entry is neither a row, broken nor skipped"
    return skipped, broken, kept


def check_catalog(entries: list[tuple[str, Any]], catalog: NormalizedModels) -> None:
    """Every invariant the transform promises, for one fuzzed catalog."""
    raws = [raw for _, raw in entries]
    frame = catalog.frame
    assert list(frame.columns) == [*FRAME_COLUMNS, *MARKS]
    assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == FRAME_DTYPES | MARKS

    skipped, broken, kept = outcomes(catalog, len(raws))
    for entry in [*catalog.skipped, *catalog.broken]:
        assert isinstance(entry.reason, str) and entry.reason.strip(), entry

    # Rows are the kept entries, in served order, one per id.
    assert list(frame["model_id"]) == [raws[index]["id"] for index in kept]
    assert frame["model_id"].is_unique
    rows = frame.to_dict("records")
    row_of = dict(zip(kept, rows, strict=True))

    # Each entry's outcome, predicted from the raw JSON.
    seen: set[str] = set()
    for index, raw in enumerate(raws):
        if not isinstance(raw, dict) or not usable_id(raw):
            served_id = raw.get("id") if isinstance(raw, dict) else None
            assert index in skipped, f"entry #{index} without a usable id was not skipped"
            assert skipped[index].model_id == (served_id if isinstance(served_id, str) else None)
            continue
        if raw["id"] in seen:
            assert index in skipped, f"repeated id #{index} {raw['id']!r} was not skipped"
            assert skipped[index].model_id == raw["id"]
            assert "duplicate" in skipped[index].reason, skipped[index].reason
            continue
        seen.add(raw["id"])
        assert index not in skipped, f"#{index} {raw['id']!r} skipped: {skipped[index].reason}"
        if unstorable(raw):
            assert index in broken, f"#{index} holds a value Postgres cannot store, yet was kept"
        elif pricing_known_valid(raw):
            assert index in row_of, f"#{index} {raw['id']!r} set aside: {broken[index].reason}"
        if index in broken:
            assert broken[index].model_id == raw["id"]

    # A row is stale exactly when an optional field could not be read, and keeps that field's
    # columns (no others).
    for index, row in row_of.items():
        raw = raws[index]
        verdicts = {
            field: field_verdict(field, raw[field]) for field in FIELD_COLUMNS if field in raw
        }
        reason, kept_columns = row["stale_reason"], row["kept_columns"]
        assert (reason is None) == (kept_columns == []), (reason, kept_columns)
        assert kept_columns == sorted(set(kept_columns)), kept_columns
        doubtful = {c for f, v in verdicts.items() if v is not True for c in FIELD_COLUMNS[f]}
        assert set(kept_columns) <= doubtful, (kept_columns, verdicts)
        for field, verdict in verdicts.items():
            if verdict is False:
                assert reason is not None and names_field(reason, field), (field, reason)
                assert set(FIELD_COLUMNS[field]) <= set(kept_columns), (field, kept_columns)

    # An untouched real model is always kept, clean, unless an earlier entry had its id.
    for index, (kind, raw) in enumerate(entries):
        if kind == "valid" and index in row_of:
            assert json.dumps(row_of[index]["raw"]) == json.dumps(raw)
            assert row_of[index]["stale_reason"] is None, row_of[index]["stale_reason"]

    for row in rows:
        for column in PRICE_COLUMNS:
            assert_valid_price(row[column], f"{row['model_id']!r}.{column}")
        for column in TIER_COLUMNS:
            for position, tier in enumerate(row[column] or []):
                assert isinstance(tier["cost"], str), tier
                assert_valid_price(Decimal(tier["cost"]), f"{column}[{position}].cost")


# --- the transform never crashes -----------------------------------------------------------


@pytest.mark.timeout(PROPERTY_TIMEOUT)
@TRANSFORM_SETTINGS
@given(entries=CATALOGS)
def test_any_json_in_any_field_never_crashes_and_every_entry_is_accounted_for(
    entries: list[tuple[str, Any]],
) -> None:
    """Random fields of real models replaced by arbitrary JSON, plus arbitrary entries.

    Proves: no exception; each input index is exactly one of a frame row, a broken model or
    a skipped entry (with a non-empty reason and the served id), and which one follows the
    rules: no usable id or a repeated id → skipped; a value Postgres cannot store → broken; a
    storable model whose pricing is absent or real → a row, stale (with that field's columns
    kept) exactly when an optional field is clearly unreadable; untouched real models are kept
    clean (a later duplicate id is the only excuse); the frame has the declared columns and
    dtypes; every price and tier cost is a finite, non-negative Decimal; the input list is not
    modified.
    """
    raws = [raw for _, raw in entries]
    note(f"entries: {entries!r}")
    served = json.dumps(raws)
    catalog = normalize_models(raws, VERCEL)
    note(f"skipped: {[(s.index, s.reason) for s in catalog.skipped]}")
    note(f"broken: {[(b.index, b.reason) for b in catalog.broken]}")
    check_catalog(entries, catalog)
    assert json.dumps(raws) == served, "normalize_models modified its input"


# --- what the transform keeps, Postgres stores --------------------------------------------


@pytest.fixture(scope="module")
def shared_engine(template_database: str) -> Iterator[Engine]:
    """One migrated database for this module's many small syncs.

    A fresh database per case costs ~0.4 s; the cases below use distinct model ids, pass
    ``max_deactivation_share=1`` and accept anomalies, so they cannot disturb one another.
    """
    name = _new_database(template_database)
    engine = database.engine_for(database.sqlalchemy_url(_url_for(name)))
    yield engine
    engine.dispose()
    _drop(name)


RELAXED = SyncPolicy(max_deactivation_share=1.0)
ACCEPTED = Acceptance("test_properties", "storability tests change prices arbitrarily")


def sync_frame(engine: Engine, catalog: NormalizedModels, run_id: str) -> SyncResult:
    """Write one catalog with the guards relaxed: these tests are about storability."""
    return sync_catalog(
        engine,
        SyncRequest(
            source=VERCEL, models=catalog, run_id=run_id, policy=RELAXED, acceptance=ACCEPTED
        ),
        datetime.now(UTC),
    )


def _libpq_url(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def stored_rows(engine: Engine, run_id: str) -> dict[str, dict[str, Any]]:
    """Every column of the rows the run wrote, read back through psycopg (so they must load).

    Selecting by the writing run, not by ``model_id = <served id>``, proves the stored text
    itself rather than its equality with a parameter.
    """
    with psycopg.connect(_libpq_url(engine), row_factory=dict_row) as connection:
        rows = connection.execute(
            "SELECT *, cost_per_1m_input::text AS input_text, "
            "cost_per_1m_output::text AS output_text, web_search_cost::text AS web_search_text "
            "FROM ai_models WHERE last_changed_run_id = %s",
            (run_id,),
        ).fetchall()
    return {row["model_id"]: row for row in rows}


def stored_state(engine: Engine, model_ids: list[str]) -> dict[str, dict[str, Any]]:
    """model_id → is_active, stale_reason and every content column as Postgres prints it,
    for the given ids (ids Postgres cannot hold, NUL or lone surrogates, are never stored)."""
    storable = [model_id for model_id in model_ids if not unstorable(model_id)]
    with psycopg.connect(_libpq_url(engine), row_factory=dict_row) as connection:
        rows = connection.execute(
            "SELECT model_id, is_active, stale_reason, "
            + ", ".join(f"{column}::text AS {column}" for column in CONTENT_COLUMNS)
            + " FROM ai_models WHERE source = %s AND model_id = ANY(%s)",
            (SOURCE, storable),
        ).fetchall()
    return {row["model_id"]: row for row in rows}


def neighbour() -> dict[str, Any]:
    return next(model for model in snapshot_models(LATEST) if model["id"] == NEIGHBOUR_ID)


@pytest.mark.timeout(PROPERTY_TIMEOUT)
@DATABASE_SETTINGS
@given(entries=CATALOGS)
def test_every_model_the_transform_keeps_is_stored_and_readable(
    shared_engine: Engine, entries: list[tuple[str, Any]]
) -> None:
    """A kept model that Postgres refuses would abort the whole sync, so none may exist.

    Proves, for fuzzed catalogs (whose real model ids recur, so the catalog already holds many
    of them): sync_catalog commits; every frame row is active with the frame's stale reason,
    and its kept columns hold exactly what was stored before; a broken model the catalog held
    stays active with its stored row untouched and the broken reason as its stale reason; a
    broken model it never held is not stored and counts as failed; every column reads back.
    """
    note(f"entries: {entries!r}")
    catalog = normalize_models([raw for _, raw in entries], VERCEL)
    if catalog.frame.empty:
        return  # nothing valid: the sync refuses (pinned in test_sync)
    frame_ids = list(catalog.frame["model_id"])
    broken_ids = [entry.model_id for entry in catalog.broken]
    before = stored_state(shared_engine, frame_ids + broken_ids)
    run_id = f"fuzz-{uuid.uuid4()}"
    result = sync_frame(shared_engine, catalog, run_id)
    after = stored_state(shared_engine, frame_ids + broken_ids)

    for row in catalog.frame.to_dict("records"):
        stored = after[row["model_id"]]
        assert stored["is_active"], row["model_id"]
        assert stored["stale_reason"] == row["stale_reason"]
        if row["model_id"] in before:
            for column in row["kept_columns"]:
                assert stored[column] == before[row["model_id"]][column], column
    held = [entry for entry in catalog.broken if entry.model_id in before]
    for entry in held:
        stored, earlier = after[entry.model_id], before[entry.model_id]
        assert stored["is_active"], entry.model_id
        assert stored["stale_reason"] == entry.as_record()["reason"]
        assert {c: stored[c] for c in CONTENT_COLUMNS} == {c: earlier[c] for c in CONTENT_COLUMNS}
    never_held = [entry for entry in catalog.broken if entry.model_id not in before]
    assert not [entry.model_id for entry in never_held if entry.model_id in after]

    stale_rows = int(catalog.frame["stale_reason"].notna().sum())
    counts = result.counts
    assert counts.total == len(frame_ids) + len(held)
    assert counts.failed == len(catalog.skipped) + len(never_held)
    assert counts.stale == stale_rows + len(held)
    stored_rows(shared_engine, run_id)


# --- known crash classes, pinned as examples -----------------------------------------------


def assert_kept_stale_alone(model: dict[str, Any], field: str, column: str) -> None:
    """The model with an unreadable optional ``field`` is kept beside its neighbour, stale
    with a reason naming the field, ``column`` kept (its stored value) and empty in the frame."""
    catalog = normalize_models([neighbour(), model], VERCEL)
    assert catalog.skipped == [] and catalog.broken == []
    assert list(catalog.frame["model_id"]) == [NEIGHBOUR_ID, model["id"]]
    clean, row = catalog.frame.to_dict("records")
    assert clean["stale_reason"] is None
    assert names_field(row["stale_reason"] or "", field), row["stale_reason"]
    assert row["kept_columns"] == [column]
    assert row[column] is pd.NaT or row[column] is None, row[column]


def real_model(model_id: str = "acme/probe") -> dict[str, Any]:
    """A copy of a real model (cheap flat prices, no tiers) under a new id."""
    model = next(m for m in snapshot_models(LATEST) if m["id"] == "alibaba/qwen-3-14b")
    model["id"] = model_id
    return model


TIME_COLUMNS = [
    pytest.param("created", "gateway_created_at", id="created"),
    pytest.param("released", "released_at", id="released"),
    pytest.param("deprecated_at", "deprecated_at", id="deprecated_at"),
]


@pytest.mark.parametrize(("field", "column"), TIME_COLUMNS)
@pytest.mark.parametrize("seconds", [10**400, -(10**400)], ids=["1e400", "-1e400"])
def test_timestamp_integer_too_large_for_a_float_keeps_the_model_stale(
    field: str, column: str, seconds: int
) -> None:
    """JSON integers have no size limit; ``json.loads`` of a 401-digit time gives a Python int.

    Proves: such a time is an unreadable optional field (the model is kept, stale, the time
    column keeps its stored value), not an OverflowError that stops every other model.
    """
    model = real_model()
    model[field] = seconds
    assert_kept_stale_alone(model, field, column)


@pytest.mark.parametrize(
    "served", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"], ids=["year-0", "year-10k"]
)
def test_iso_time_outside_the_datetime_range_in_utc_keeps_the_model_stale(served: str) -> None:
    """An offset can push a valid local time out of the representable range once in UTC.

    Proves: such a time is a per-field validation failure (model kept, stale), not an
    OverflowError of the frame.
    """
    model = real_model()
    model["created"] = served
    assert_kept_stale_alone(model, "created", "gateway_created_at")


def test_deeply_nested_unmodelled_value_is_kept_or_skipped_not_a_crash() -> None:
    """1,000 nested arrays is valid JSON (RFC 8259 sets no depth limit; orjson takes 1,024).

    Proves: normalize_models accounts for the model (a row, broken or skipped) instead of
    raising RecursionError from a recursive walk of the value (its storability check, its
    schema profile).
    """
    deep: list[Any] = []
    for _ in range(1_000):
        deep = [deep]
    model = real_model()
    model["nested"] = deep
    catalog = normalize_models([neighbour(), model], VERCEL)
    assert NEIGHBOUR_ID in set(catalog.frame["model_id"])
    assert len(catalog.frame) + len(catalog.broken) + len(catalog.skipped) == 2


# Where each case puts the value, and how Postgres reads it back as text.
UNMODELLED_PLACES = [
    pytest.param(
        lambda m, v: m.__setitem__("throughput", v), "raw ->> 'throughput'", id="top-level"
    ),
    pytest.param(
        lambda m, v: m["pricing"].__setitem__("image", v), "pricing ->> 'image'", id="pricing"
    ),
    pytest.param(
        lambda m, v: m["pricing"].__setitem__("input_tiers", [{"cost": "0.000001", "note": v}]),
        "input_tiers -> 0 ->> 'note'",
        id="tier-extra",
    ),
]


@pytest.mark.parametrize(("make", "stored_text"), UNMODELLED_PLACES)
@pytest.mark.parametrize("literal", ["1e400", "-1e400", "NaN"])
@pytest.mark.parametrize("parser", ["json.loads", "decode_json"])
def test_non_finite_number_in_an_unmodelled_field_does_not_abort_the_sync(
    shared_engine: Engine,
    make: Callable[[dict, Any], None],
    stored_text: str,
    literal: str,
    parser: str,
) -> None:
    """``1e400`` and ``NaN`` are JSON Python's parser accepts: ``json.loads`` reads them as
    float inf and NaN; the service's ``decode_json`` reads 1e400 as the Decimal of its text
    and NaN as a non-finite float.

    Proves: a non-finite value makes the model broken (JSONB cannot hold NaN/Infinity, so
    keeping it as-is would abort the write, or store something else than was served) with a
    reason, and being new to the catalog it is reported as failed and not stored; 1e400 read
    as a Decimal is an ordinary JSON number, stored exactly. Either way the sync commits.
    """
    value = json.loads(literal) if parser == "json.loads" else decode_json(literal.encode())
    model = real_model(f"acme/non-finite-{uuid.uuid4().hex[:8]}")
    make(model, value)
    catalog = normalize_models([neighbour(), model], VERCEL)
    assert catalog.skipped == []
    run_id = f"non-finite-{uuid.uuid4()}"
    if parser == "decode_json" and literal != "NaN":
        assert catalog.broken == []
        result = sync_frame(shared_engine, catalog, run_id)
        assert result.counts.failed == 0
        with psycopg.connect(_libpq_url(shared_engine)) as connection:
            (text,) = connection.execute(
                f"SELECT {stored_text} FROM ai_models WHERE source = %s AND model_id = %s",
                (SOURCE, model["id"]),
            ).fetchone()
        assert text == literal.removesuffix("e400") + "0" * 400
        return
    assert [(b.index, b.model_id) for b in catalog.broken] == [(1, model["id"])]
    assert catalog.broken[0].reason.strip()
    result = sync_frame(shared_engine, catalog, run_id)
    assert (result.counts.failed, [s.model_id for s in result.skipped]) == (1, [model["id"]])
    assert stored_state(shared_engine, [model["id"]]) == {}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda m: m.__setitem__("x\x00y", 1), id="nul-in-a-top-level-key"),
        pytest.param(
            lambda m: m["pricing"].__setitem__("image\ud800", "0.01"),
            id="lone-surrogate-in-a-pricing-key",
        ),
    ],
)
def test_a_key_postgres_cannot_store_costs_only_its_model(
    shared_engine: Engine, make: Callable[[dict[str, Any]], None]
) -> None:
    """Keys travel into the stored raw JSON and into the run's schema profile (every key path
    of the response), and Postgres refuses NUL and lone surrogates in both.

    Proves: the model is broken with a reason; new to the catalog, it is counted as failed and
    not stored; the sync of its neighbour commits.
    """
    model = real_model(f"acme/bad-key-{uuid.uuid4().hex[:8]}")
    make(model)
    catalog = normalize_models([neighbour(), model], VERCEL)
    assert catalog.skipped == []
    assert [(b.index, b.model_id) for b in catalog.broken] == [(1, model["id"])]
    result = sync_frame(shared_engine, catalog, f"bad-key-{uuid.uuid4()}")
    assert (result.counts.failed, [s.model_id for s in result.skipped]) == (1, [model["id"]])
    assert stored_state(shared_engine, [model["id"]]) == {}
    assert stored_state(shared_engine, [NEIGHBOUR_ID])[NEIGHBOUR_ID]["is_active"]


# --- hostile model ids through a real sync -----------------------------------------------

CJK_1000 = "".join(chr(0x4E00 + (i * 7919) % 20_000) for i in range(998))
STORED, REJECTED, EITHER = "stored", "rejected", "stored or rejected"

HOSTILE_IDS = [
    pytest.param("o'reilly/gpt-'5'", STORED, id="single-quotes"),
    pytest.param('acme/"quoted" model', STORED, id="double-quotes"),
    pytest.param("acme;/model;;", STORED, id="semicolons"),
    pytest.param("; DROP TABLE ai_models; --", STORED, id="drop-table"),
    pytest.param("acme/x'); DROP TABLE ai_models; --", STORED, id="drop-table-after-quote"),
    pytest.param('acme/x"); DROP TABLE ai_models; --', STORED, id="drop-table-after-dquote"),
    pytest.param("acme/$$; DROP TABLE ai_models; $$", STORED, id="dollar-quoting"),
    pytest.param("acme/:source :run_id", STORED, id="bind-parameter-lookalike"),
    pytest.param("acme/%s %(run_id)s {source}", STORED, id="format-lookalike"),
    pytest.param("\\N", STORED, id="copy-null-marker"),
    pytest.param("acme\\/model\\", STORED, id="backslashes"),
    pytest.param("acme/a\tb\nc\rd", STORED, id="tab-newline-cr"),
    pytest.param("\U0001f916/gpt-\u2728-\U0001f9ea", STORED, id="emoji"),
    pytest.param("\u0645\u0632\u0648\u062f/\u202enomed\u202c", STORED, id="rtl-and-override"),
    pytest.param("acme/mo\u0308del\u0301\u0327", STORED, id="combining-marks"),
    pytest.param("acme/gpt\u20605", STORED, id="word-joiner-U+2060"),
    pytest.param("\u200b", STORED, id="zero-width-space-only"),
    pytest.param("\ufeffacme/model", STORED, id="leading-bom"),
    pytest.param("acme/" + "x" * 995, STORED, id="1000-ascii-chars"),
    pytest.param("\u6f22/" + CJK_1000, EITHER, id="1000-cjk-chars-3000-bytes"),
    pytest.param("gpt-no-provider", STORED, id="no-slash"),
    pytest.param("/model", STORED, id="empty-provider"),
    pytest.param("acme/", STORED, id="empty-model-part"),
    pytest.param("/", STORED, id="only-slash"),
    pytest.param("  acme/model  ", STORED, id="surrounding-spaces"),
    pytest.param("acme/ model\u00a0name", STORED, id="inner-space-and-nbsp"),
    pytest.param("   ", REJECTED, id="blank"),
    pytest.param("\t\n\r ", REJECTED, id="only-control-whitespace"),
    pytest.param("\u3000", REJECTED, id="ideographic-space"),
    pytest.param("acme/model\x00", REJECTED, id="nul"),  # a usable id, but unstorable: broken
    pytest.param("acme/\ud800", REJECTED, id="lone-surrogate"),
]


@pytest.fixture
def statements(shared_engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement text SQLAlchemy sends while the test runs."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        seen.append(statement)

    event.listen(shared_engine, "before_cursor_execute", record)
    yield seen
    event.remove(shared_engine, "before_cursor_execute", record)


@pytest.mark.parametrize(("model_id", "outcome"), HOSTILE_IDS)
def test_hostile_model_id_is_stored_verbatim_or_rejected(
    shared_engine: Engine, statements: list[str], model_id: str, outcome: str
) -> None:
    """Ids reach SQL only as parameters and COPY data, so any text is stored exactly as served.

    Proves: the id is stored byte for byte (read back by the run that wrote it, not by
    equality with the parameter) with provider = the part before the first "/" or owned_by,
    or it is rejected with a reason (skipped when it is no usable id, broken when Postgres
    cannot store it) and, new to the catalog, counted as failed; the neighbour is stored too;
    ai_models still exists; no statement text ever contains the id.
    """
    model = real_model(model_id)
    catalog = normalize_models([neighbour(), model], VERCEL)
    rejected = [*catalog.skipped, *catalog.broken]
    if rejected:
        assert outcome in (REJECTED, EITHER), f"rejected: {rejected[0].reason}"
        assert [(s.index, s.model_id) for s in rejected] == [(1, model_id)]
        assert rejected[0].reason.strip()
    else:
        assert outcome in (STORED, EITHER), "expected the transform to reject this id"
    run_id = f"hostile-{uuid.uuid4()}"
    result = sync_frame(shared_engine, catalog, run_id)
    assert result.counts.failed == len(rejected)

    rows = stored_rows(shared_engine, run_id)
    with psycopg.connect(_libpq_url(shared_engine)) as connection:
        (table_exists,) = connection.execute(
            "SELECT to_regclass('public.ai_models') IS NOT NULL"
        ).fetchone()
        neighbour_active = connection.execute(
            "SELECT is_active FROM ai_models WHERE source = %s AND model_id = %s",
            (SOURCE, NEIGHBOUR_ID),
        ).fetchall()
    assert table_exists
    assert neighbour_active == [(True,)]
    if rejected:
        assert model_id not in rows
        return
    assert model_id in rows, f"stored ids: {[repr(i) for i in rows]}"
    provider, slash, _ = model_id.partition("/")
    assert rows[model_id]["provider"] == (provider if slash and provider else model["owned_by"])
    # "/" alone occurs in the SQL anyway (as division); every other id must not.
    assert statements, "the statement listener saw nothing"
    if model_id != "/":
        assert not [s for s in statements if model_id in s], "the id was spliced into SQL"


def test_canonically_equivalent_ids_stay_two_distinct_models(shared_engine: Engine) -> None:
    """No Unicode normalization: NFC and NFD spellings of one name are two stored ids.

    Proves the stored id is the served code point sequence, so a lookup must use the exact
    served spelling (documented outcome, not an accident).
    """
    composed = unicodedata.normalize("NFC", "acme/caf\u00e9")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    catalog = normalize_models([neighbour(), real_model(composed), real_model(decomposed)], VERCEL)
    assert catalog.skipped == [] and catalog.broken == []
    run_id = f"nfc-nfd-{uuid.uuid4()}"
    sync_frame(shared_engine, catalog, run_id)
    assert {composed, decomposed} <= set(stored_rows(shared_engine, run_id))


# --- prices through a real sync ----------------------------------------------------------


def broken_for(field: str, words: str = "") -> tuple[str, str]:
    """A broken model whose reason names ``field`` (and says ``words``, where pinned)."""
    return ("broken", f"{field}|{words}")


PRICE_CASES = [
    # (served JSON of pricing.input, expected cost_per_1m_input::text or a skip)
    pytest.param('"3e-6"', "3", id="exponent-string"),
    pytest.param('"0"', "0", id="zero"),
    pytest.param('"-0"', "0", id="negative-zero"),
    pytest.param('"0.000000"', "0", id="zero-with-scale"),
    pytest.param('"+0.000001"', "1", id="explicit-plus"),
    pytest.param('"0.0000030"', "3.0", id="trailing-zero-keeps-scale"),
    pytest.param('"1e-7"', "0.1", id="exponent-fraction"),
    pytest.param('"0.0000000000000000000000123"', "0.0000000000000000123", id="25-decimal-places"),
    pytest.param(
        '"0.00000012345678901234567890123"',
        "0.12345678901234567890123",
        id="29-places-23-significant-digits",
    ),
    pytest.param('"0.' + "0" * 999 + '1"', "0." + "0" * 993 + "1", id="1000-decimal-places"),
    pytest.param('"1000000000"', "1000000000000000", id="upper-bound"),
    pytest.param("3e-06", "3", id="json-float-3e-06"),
    pytest.param("1.5e-05", "15", id="json-float-1.5e-05"),
    pytest.param("1e-07", "0.1", id="json-float-1e-07"),
    pytest.param("0.30000000000000004", "300000.00000000004", id="json-float-shortest-repr"),
    pytest.param("0", "0", id="json-int-zero"),
    pytest.param("1", "1000000", id="json-int-one"),
    pytest.param('"-0.000001"', broken_for("pricing.input", "negative"), id="negative"),
    pytest.param("-1e-06", broken_for("pricing.input", "negative"), id="json-negative"),
    pytest.param('"NaN"', broken_for("pricing.input", "not a decimal"), id="NaN-string"),
    # Python's JSON parser reads the NaN literal as a float NaN, which jsonb cannot hold.
    pytest.param("NaN", broken_for("pricing.input", "not a finite number"), id="NaN-literal"),
    pytest.param('"Infinity"', broken_for("pricing.input", "not a decimal"), id="Infinity"),
    pytest.param('"-Infinity"', broken_for("pricing.input", "not a decimal"), id="-Infinity"),
    # Decoded as the Decimal 1E+400 from its text (not float inf): a price over the bound.
    pytest.param("1e400", broken_for("pricing.input", "out of range"), id="json-1e400"),
    pytest.param(
        '"0.' + "0" * 1000 + '1"',
        broken_for("pricing.input", "more than 1000 decimal places"),
        id="1001-decimal-places",
    ),
    pytest.param('"1000000001"', broken_for("pricing.input", "out of range"), id="over-bound"),
    pytest.param("1e300", broken_for("pricing.input", "out of range"), id="json-float-huge"),
    pytest.param("1" + "0" * 400, broken_for("pricing.input", "out of range"), id="json-int-huge"),
    pytest.param("true", broken_for("pricing.input", "boolean"), id="json-true"),
    pytest.param('" 0.000001"', broken_for("pricing.input", "not a decimal"), id="leading-space"),
]


@pytest.mark.parametrize(("served", "expected"), PRICE_CASES)
def test_input_price_has_a_defined_stored_outcome(
    shared_engine: Engine, served: str, expected: str | tuple[str, str]
) -> None:
    """Each served price form ends as one exact NUMERIC (read back as text) or a broken model
    (new to the catalog: not stored, counted as failed).

    The served value is decoded from JSON text as the service does (``decode_json``), so "JSON
    numbers instead of strings" are real JSON numbers: fractions and exponents as Decimals of
    their text (``1e400`` is 1E+400), the ``NaN`` literal as Python's float NaN.
    """
    model = real_model(f"acme/price-input-{uuid.uuid4().hex[:8]}")
    model["pricing"] = {"input": decode_json(served.encode()), "output": "0.000002"}
    outcome = store_one(shared_engine, model)
    if isinstance(expected, tuple):
        field, words = expected[1].split("|")
        assert outcome[0] == "broken", f"stored as {outcome[1]!r}"
        assert field in outcome[1] and words in outcome[1], outcome[1]
    else:
        assert outcome == ("stored", expected, "2")


BROKEN_PRICES = [case for case in PRICE_CASES if isinstance(case.values[1], tuple)]


@pytest.mark.parametrize(("served", "expected"), BROKEN_PRICES)
def test_known_model_with_a_broken_price_keeps_its_stored_row_active_and_stale(
    shared_engine: Engine, served: str, expected: tuple[str, str]
) -> None:
    """Served models are never lost, and money is never half-read: a model the catalog holds
    whose price turns unreadable keeps its whole stored row (both prices, though the output
    price moved too), stays active, and is marked stale with the reason (one 'stale' change);
    once its prices read again it takes the served ones and recovers."""
    model = real_model(f"acme/price-known-{uuid.uuid4().hex[:8]}")
    model["pricing"] = {"input": "0.000001", "output": "0.000002"}
    assert store_one(shared_engine, model) == ("stored", "1", "2")

    broken = copy.deepcopy(model)
    broken["pricing"] = {"input": decode_json(served.encode()), "output": "0.000003"}
    catalog = normalize_models([neighbour(), broken], VERCEL)
    assert [(b.index, b.model_id) for b in catalog.broken] == [(1, model["id"])]
    result = sync_frame(shared_engine, catalog, f"price-known-{uuid.uuid4()}")
    state = stored_state(shared_engine, [model["id"]])[model["id"]]
    assert state["is_active"]
    assert (state["cost_per_1m_input"], state["cost_per_1m_output"]) == ("1", "2")
    assert state["stale_reason"] == catalog.broken[0].as_record()["reason"]
    assert expected[1].split("|")[0] in state["stale_reason"]
    assert model["id"] not in [*result.updated, *result.deactivated, *result.created]
    assert (result.counts.failed, result.counts.stale) == (0, 1)
    assert changes_of(shared_engine, result.sync_id, model["id"]) == ["stale"]

    recovered = copy.deepcopy(model)
    recovered["pricing"]["output"] = "0.000003"
    result = sync_frame(
        shared_engine,
        normalize_models([neighbour(), recovered], VERCEL),
        f"recovered-{uuid.uuid4()}",
    )
    state = stored_state(shared_engine, [model["id"]])[model["id"]]
    assert (state["is_active"], state["stale_reason"]) == (True, None)
    assert (state["cost_per_1m_input"], state["cost_per_1m_output"]) == ("1", "3")
    assert result.counts.stale == 0
    assert sorted(changes_of(shared_engine, result.sync_id, model["id"])) == [
        "price_changed",
        "recovered",
    ]


@pytest.mark.parametrize(
    ("key", "value", "columns"),
    [
        pytest.param("context_window", "big", ["context_window"], id="context-window-text"),
        pytest.param("created", "yesterday", ["gateway_created_at"], id="created-text"),
        pytest.param("owned_by", ["alibaba"], ["owned_by", "provider"], id="owner-list"),
        pytest.param(
            "tags",
            "reasoning",
            ["capabilities", "supports_function_calling", "supports_reasoning", "supports_vision"],
            id="tags-text",
        ),
    ],
)
def test_known_model_with_a_broken_optional_field_keeps_those_columns(
    shared_engine: Engine, key: str, value: Any, columns: list[str]
) -> None:
    """A broken optional field costs only its own columns: they keep the values stored from
    the last readable response (the frame holds them empty), while the model's other fields
    are updated from the same response, and the row is stale naming the field."""
    model = real_model(f"acme/kept-{uuid.uuid4().hex[:8]}")
    assert store_one(shared_engine, model)[0] == "stored"
    before = stored_state(shared_engine, [model["id"]])[model["id"]]
    # The kept values are real ones (40960, a time, "alibaba", tool-use and reasoning flags).
    assert before["context_window"] == "40960" and before["owned_by"] == "alibaba"
    assert before["supports_function_calling"] == before["supports_reasoning"] == "true"

    broken = copy.deepcopy(model)
    broken[key] = value
    broken["description"] = "changed while stale"
    catalog = normalize_models([neighbour(), broken], VERCEL)
    row = catalog.frame.to_dict("records")[1]
    assert row["kept_columns"] == columns
    result = sync_frame(shared_engine, catalog, f"kept-{uuid.uuid4()}")
    after = stored_state(shared_engine, [model["id"]])[model["id"]]
    assert model["id"] in result.updated
    assert {c: after[c] for c in columns} == {c: before[c] for c in columns}
    assert after["description"] == "changed while stale"
    assert after["is_active"] and names_field(after["stale_reason"] or "", key)


def changes_of(engine: Engine, sync_id: int, model_id: str) -> list[str]:
    with psycopg.connect(_libpq_url(engine)) as connection:
        rows = connection.execute(
            "SELECT change_type FROM ai_model_changes WHERE sync_id = %s AND model_id = %s "
            "ORDER BY id",
            (sync_id, model_id),
        ).fetchall()
    return [change_type for (change_type,) in rows]


@pytest.mark.parametrize(
    ("pricing", "column", "expected"),
    [
        pytest.param({"web_search": "1e3"}, "web_search_text", "1000", id="web-search-exponent"),
        pytest.param({"web_search": "0.01"}, "web_search_text", "0.01", id="web-search-unscaled"),
        pytest.param(
            {"input_tiers": [{"cost": "3e-6", "max": 200000}, {"cost": "6e-6", "min": 200000}]},
            "input_text",
            "3",
            id="first-tier-is-base-price",
        ),
    ],
)
def test_other_price_forms_are_stored_exactly(
    shared_engine: Engine, pricing: dict[str, Any], column: str, expected: str
) -> None:
    """web_search is stored as served (per search, unscaled); a tier-only price uses band one.

    Tier costs keep every band in the JSONB column as plain decimal strings.
    """
    model = real_model(f"acme/price-other-{uuid.uuid4().hex[:8]}")
    model["pricing"] = pricing
    catalog = normalize_models([neighbour(), model], VERCEL)
    assert catalog.skipped == [] and catalog.broken == []
    run_id = f"price-{uuid.uuid4()}"
    sync_frame(shared_engine, catalog, run_id)
    row = stored_rows(shared_engine, run_id)[model["id"]]
    assert row[column] == expected
    if "input_tiers" in pricing:
        assert row["input_tiers"] == [
            {"cost": "0.000003", "min": 0, "max": 200000},
            {"cost": "0.000006", "min": 200000},
        ]


def store_one(engine: Engine, model: dict[str, Any]) -> tuple[str, str, str | None]:
    """Transform and sync one model beside the neighbour: ("stored", input, output), or
    ("broken", reason, None) for a broken model the catalog never held (reported as failed,
    not stored)."""
    catalog = normalize_models([neighbour(), model], VERCEL)
    assert catalog.skipped == []
    run_id = f"price-{uuid.uuid4()}"
    result = sync_frame(engine, catalog, run_id)
    if catalog.broken:
        assert [b.index for b in catalog.broken] == [1]
        assert [s.model_id for s in result.skipped] == [model["id"]]
        assert result.counts.failed == 1
        assert model["id"] not in stored_rows(engine, run_id)
        assert stored_state(engine, [model["id"]]) == {}
        return ("broken", catalog.broken[0].reason, None)
    row = stored_rows(engine, run_id)[model["id"]]
    return ("stored", row["input_text"], row["output_text"])
