"""Property-based and hostile-input tests: the transform never crashes, and what it keeps stores.

``test_transform.py`` breaks one chosen field at a time; a gateway breaks fields nobody chose.
Here hypothesis replaces random fields of real recorded models with arbitrary JSON (NaN,
infinities, huge integers, NUL, lone surrogates, nested containers) and mixes in entries that
are arbitrary JSON altogether. Whatever comes in, one bad model must cost only itself:
``normalize_models`` must account for every entry exactly once (a frame row, or skipped with a
reason), keep every untouched real model, and hand the loader only finite, non-negative prices
in the declared frame shape. A second property pushes the same catalogs through a real sync,
because a model the transform keeps but Postgres cannot store aborts the whole transaction.

The table-driven tests then store hostile model ids and every defined price form through the
real sync and read back exactly what Postgres holds.

Hypothesis profiles (applied to this module's property tests only, so other modules keep their
own settings):

- ``model_sync_quick`` (the default): 300 fuzzed catalogs for the pure property and 50 for the
  database property; the whole module runs in well under 30 s.
- ``thorough``: ``HYPOTHESIS_PROFILE=thorough .venv/bin/pytest
  model_sync_tests/test_properties.py`` runs 10,000 fuzzed catalogs through the transform and
  1,666 through the database (a few minutes).
"""

from __future__ import annotations

import copy
import json
import os
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from sqlalchemy import Engine, event

from model_sync.store import database
from model_sync.store.sync import PRICE_COLUMNS, TIER_COLUMNS, SyncRequest, sync_catalog
from model_sync.transform import FRAME_COLUMNS, FRAME_DTYPES, NormalizedCatalog, normalize_models
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


# --- invariants --------------------------------------------------------------------------


def assert_valid_price(value: Any, where: str) -> None:
    """None, or a finite, non-negative, unsigned Decimal (the canonical zero is unsigned)."""
    if value is None:
        return
    assert isinstance(value, Decimal), f"{where}: {value!r} is not a Decimal"
    assert value.is_finite(), f"{where}: {value!r} is not finite"
    assert value >= 0 and not value.is_signed(), f"{where}: {value!r} is negative"


def kept_indices(catalog: NormalizedCatalog, count: int) -> list[int]:
    """The input positions that became frame rows; every other position must be skipped once."""
    skipped = [entry.index for entry in catalog.skipped]
    assert len(skipped) == len(set(skipped)), f"an index was skipped twice: {skipped}"
    assert all(0 <= index < count for index in skipped), skipped
    kept = [index for index in range(count) if index not in set(skipped)]
    assert len(catalog.frame) == len(kept), "an entry is neither a row nor skipped"
    return kept


def check_catalog(entries: list[tuple[str, Any]], catalog: NormalizedCatalog) -> None:
    """Every invariant the transform promises, for one fuzzed catalog."""
    raws = [raw for _, raw in entries]
    frame = catalog.frame
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == FRAME_DTYPES

    kept = kept_indices(catalog, len(raws))
    for skipped in catalog.skipped:
        raw = raws[skipped.index]
        assert isinstance(skipped.reason, str) and skipped.reason.strip(), skipped
        served_id = raw.get("id") if isinstance(raw, dict) else None
        assert skipped.model_id == (served_id if isinstance(served_id, str) else None), skipped

    # Rows are the kept entries, in served order, one per id.
    assert list(frame["model_id"]) == [raws[index]["id"] for index in kept]
    assert frame["model_id"].is_unique
    rows = frame.to_dict("records")
    row_of = dict(zip(kept, rows, strict=True))

    # An untouched real model is always kept, unless an earlier entry with its id was kept.
    for index, (kind, raw) in enumerate(entries):
        if kind != "valid":
            continue
        earlier = {raws[k]["id"] for k in kept if k < index}
        if raw["id"] in earlier:
            assert index not in row_of
            reason = next(s.reason for s in catalog.skipped if s.index == index)
            assert "duplicate" in reason, reason
        else:
            assert index in row_of, f"valid model #{index} {raw['id']!r} was skipped"
            assert json.dumps(row_of[index]["raw"]) == json.dumps(raw)

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

    Proves: no exception; each input index is a frame row or skipped (with a non-empty reason
    and the served id) exactly once; untouched real models are kept (a later duplicate id is
    the only excuse); the frame has the declared columns and dtypes; every price and tier cost
    is a finite, non-negative Decimal; the input list is not modified.
    """
    raws = [raw for _, raw in entries]
    note(f"entries: {entries!r}")
    served = json.dumps(raws)
    catalog = normalize_models(raws)
    note(f"skipped: {[(s.index, s.reason) for s in catalog.skipped]}")
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


def sync_frame(engine: Engine, catalog: NormalizedCatalog, run_id: str) -> None:
    """Write one catalog with the guards relaxed: these tests are about storability."""
    sync_catalog(
        engine,
        SyncRequest(
            frame=catalog.frame,
            source=SOURCE,
            run_id=run_id,
            skipped=[s.as_record() for s in catalog.skipped],
            max_deactivation_share=1.0,
            accepted_by="test_properties",
            accept_reason="storability tests change prices arbitrarily",
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


def neighbour() -> dict[str, Any]:
    return next(model for model in snapshot_models(LATEST) if model["id"] == NEIGHBOUR_ID)


@pytest.mark.timeout(PROPERTY_TIMEOUT)
@DATABASE_SETTINGS
@given(entries=CATALOGS)
def test_every_model_the_transform_keeps_is_stored_and_readable(
    shared_engine: Engine, entries: list[tuple[str, Any]]
) -> None:
    """A kept model that Postgres refuses would abort the whole sync, so none may exist.

    Proves: for fuzzed catalogs, sync_catalog commits, every frame row is active in ai_models,
    and every column reads back.
    """
    note(f"entries: {entries!r}")
    catalog = normalize_models([raw for _, raw in entries])
    if catalog.frame.empty:
        return
    run_id = f"fuzz-{uuid.uuid4()}"
    sync_frame(shared_engine, catalog, run_id)
    with psycopg.connect(_libpq_url(shared_engine)) as connection:
        rows = connection.execute(
            "SELECT model_id, is_active FROM ai_models WHERE source = %s AND model_id = ANY(%s)",
            (SOURCE, list(catalog.frame["model_id"])),
        ).fetchall()
    assert sorted(rows) == sorted((model_id, True) for model_id in catalog.frame["model_id"])
    stored_rows(shared_engine, run_id)


# --- known crash classes, pinned as examples -----------------------------------------------


def assert_skipped_alone(model: dict[str, Any], field: str) -> None:
    """The broken model is skipped with a reason naming ``field``; its neighbour is kept."""
    catalog = normalize_models([neighbour(), model])
    assert list(catalog.frame["model_id"]) == [NEIGHBOUR_ID]
    assert [(s.index, s.model_id) for s in catalog.skipped] == [(1, model.get("id"))]
    assert field in catalog.skipped[0].reason, catalog.skipped[0].reason


def real_model(model_id: str = "acme/probe") -> dict[str, Any]:
    """A copy of a real model (cheap flat prices, no tiers) under a new id."""
    model = next(m for m in snapshot_models(LATEST) if m["id"] == "alibaba/qwen-3-14b")
    model["id"] = model_id
    return model


@pytest.mark.parametrize("field", ["created", "released", "deprecated_at"])
@pytest.mark.parametrize("seconds", [10**400, -(10**400)], ids=["1e400", "-1e400"])
def test_timestamp_integer_too_large_for_a_float_is_skipped(field: str, seconds: int) -> None:
    """JSON integers have no size limit; ``json.loads`` of a 401-digit time gives a Python int.

    Proves: such a model is skipped with a reason naming the field, not an OverflowError
    that stops every other model.
    """
    model = real_model()
    model[field] = seconds
    assert_skipped_alone(model, field)


@pytest.mark.parametrize(
    "served", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"], ids=["year-0", "year-10k"]
)
def test_iso_time_outside_the_datetime_range_in_utc_is_skipped(served: str) -> None:
    """An offset can push a valid local time out of the representable range once in UTC.

    Proves: such a time is a per-model validation failure, not an OverflowError of the frame.
    """
    model = real_model()
    model["created"] = served
    assert_skipped_alone(model, "created")


def test_deeply_nested_unmodelled_value_is_kept_or_skipped_not_a_crash() -> None:
    """1,000 nested arrays is valid JSON (RFC 8259 sets no depth limit; orjson takes 1,024).

    Proves: normalize_models accounts for the model either way instead of raising
    RecursionError from a recursive walk of the value.
    """
    deep: list[Any] = []
    for _ in range(1_000):
        deep = [deep]
    model = real_model()
    model["nested"] = deep
    catalog = normalize_models([neighbour(), model])
    assert NEIGHBOUR_ID in set(catalog.frame["model_id"])
    assert len(catalog.frame) + len(catalog.skipped) == 2


@pytest.mark.parametrize(
    ("label", "make"),
    [
        pytest.param("top-level", lambda m, v: m.__setitem__("throughput", v), id="top-level"),
        pytest.param("pricing", lambda m, v: m["pricing"].__setitem__("image", v), id="pricing"),
        pytest.param(
            "tier",
            lambda m, v: m["pricing"].__setitem__("input_tiers", [{"cost": "0.000001", "note": v}]),
            id="tier-extra",
        ),
    ],
)
@pytest.mark.parametrize("literal", ["1e400", "-1e400", "NaN"])
def test_non_finite_number_in_an_unmodelled_field_does_not_abort_the_sync(
    shared_engine: Engine, label: str, make: Callable[[dict, Any], None], literal: str
) -> None:
    """``1e400`` is standard JSON; Python's parser reads it as inf (and accepts NaN too).

    Proves: the model is skipped with a reason or stored, and the sync of its neighbours
    commits — JSONB cannot hold NaN/Infinity, so keeping the model as-is would abort it.
    """
    model = real_model(f"acme/non-finite-{label}-{literal}")
    make(model, json.loads(literal))
    catalog = normalize_models([neighbour(), model])
    run_id = f"non-finite-{uuid.uuid4()}"
    sync_frame(shared_engine, catalog, run_id)
    if catalog.skipped:
        assert catalog.skipped[0].model_id == model["id"] and catalog.skipped[0].reason
    else:
        assert model["id"] in stored_rows(shared_engine, run_id)


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
    pytest.param("acme/model\x00", REJECTED, id="nul"),
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
    or it is skipped with a reason; the neighbour is stored too; ai_models still exists; no
    statement text ever contains the id.
    """
    model = real_model(model_id)
    catalog = normalize_models([neighbour(), model])
    if catalog.skipped:
        assert outcome in (REJECTED, EITHER), f"rejected: {catalog.skipped[0].reason}"
        assert [(s.index, s.model_id) for s in catalog.skipped] == [(1, model_id)]
        assert catalog.skipped[0].reason.strip()
    else:
        assert outcome in (STORED, EITHER), "expected the transform to reject this id"
    run_id = f"hostile-{uuid.uuid4()}"
    sync_frame(shared_engine, catalog, run_id)

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
    if catalog.skipped:
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
    catalog = normalize_models([neighbour(), real_model(composed), real_model(decomposed)])
    assert catalog.skipped == []
    run_id = f"nfc-nfd-{uuid.uuid4()}"
    sync_frame(shared_engine, catalog, run_id)
    assert {composed, decomposed} <= set(stored_rows(shared_engine, run_id))


# --- prices through a real sync ----------------------------------------------------------


def skipped_for(field: str, words: str = "") -> tuple[str, str]:
    """A skip whose reason names ``field`` (and says ``words``, where the wording is pinned)."""
    return ("skipped", f"{field}|{words}")


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
    pytest.param('"-0.000001"', skipped_for("pricing.input", "negative"), id="negative"),
    pytest.param("-1e-06", skipped_for("pricing.input", "negative"), id="json-negative"),
    pytest.param('"NaN"', skipped_for("pricing.input", "not a decimal"), id="NaN-string"),
    # Non-finite JSON numbers: skipped; whether as a price or as unstorable JSON is open.
    pytest.param("NaN", skipped_for("pricing.input"), id="NaN-literal"),
    pytest.param('"Infinity"', skipped_for("pricing.input", "not a decimal"), id="Infinity"),
    pytest.param('"-Infinity"', skipped_for("pricing.input", "not a decimal"), id="-Infinity"),
    pytest.param("1e400", skipped_for("pricing.input"), id="json-1e400-is-inf"),
    pytest.param(
        '"0.' + "0" * 1000 + '1"',
        skipped_for("pricing.input", "more than 1000 decimal places"),
        id="1001-decimal-places",
    ),
    pytest.param('"1000000001"', skipped_for("pricing.input", "out of range"), id="over-bound"),
    pytest.param("1e300", skipped_for("pricing.input", "out of range"), id="json-float-huge"),
    pytest.param("1" + "0" * 400, skipped_for("pricing.input", "out of range"), id="json-int-huge"),
    pytest.param("true", skipped_for("pricing.input", "boolean"), id="json-true"),
    pytest.param('" 0.000001"', skipped_for("pricing.input", "not a decimal"), id="leading-space"),
]


@pytest.mark.parametrize(("served", "expected"), PRICE_CASES)
def test_input_price_has_a_defined_stored_outcome(
    shared_engine: Engine, served: str, expected: str | tuple[str, str]
) -> None:
    """Each served price form ends as one exact NUMERIC (read back as text) or a skipped model.

    The served value is parsed from JSON text, as the gateway client does, so "JSON numbers
    instead of strings" are real JSON numbers (``1e400`` is inf, ``NaN`` is accepted by Python).
    """
    model = real_model(f"acme/price-input-{uuid.uuid4().hex[:8]}")
    model["pricing"] = {"input": json.loads(served), "output": "0.000002"}
    outcome = store_one(shared_engine, model)
    if isinstance(expected, tuple):
        field, words = expected[1].split("|")
        assert outcome[0] == "skipped", f"stored as {outcome[1]!r}"
        assert field in outcome[1] and words in outcome[1], outcome[1]
    else:
        assert outcome == ("stored", expected, "2")


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
    catalog = normalize_models([neighbour(), model])
    assert catalog.skipped == []
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
    """Transform and sync one model beside the neighbour: ("stored", input, output) or skip."""
    catalog = normalize_models([neighbour(), model])
    run_id = f"price-{uuid.uuid4()}"
    sync_frame(engine, catalog, run_id)
    if catalog.skipped:
        assert [s.index for s in catalog.skipped] == [1]
        return ("skipped", catalog.skipped[0].reason, None)
    row = stored_rows(engine, run_id)[model["id"]]
    return ("stored", row["input_text"], row["output_text"])
