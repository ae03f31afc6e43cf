"""Raw gateway models → catalog frame, checked against every model of every recorded snapshot.

Expected values are computed here from the raw JSON strings (string shifts, ``Decimal``,
epoch arithmetic), never by calling the code under test, so a wrong mapping cannot agree
with itself. Pure: no database, no network.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import pandas as pd
import pytest

from model_sync.sources import get_source
from model_sync.sources.base import decode_json
from model_sync.transform import (
    FRAME_COLUMNS,
    FRAME_DTYPES,
    BrokenModel,
    NormalizedModels,
    SkippedModel,
    normalize_models,
)
from model_sync_tests.expected import PLAIN_DECIMAL, TOKEN_PRICES, served_base_price, shift_six
from model_sync_tests.snapshots import snapshot_models, vercel_snapshots

VERCEL = get_source("vercel")
LATEST = "models-2026-03-05.json"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TIER_KEYS = tuple(tier_key for _, tier_key, _ in TOKEN_PRICES)

# Exclusive upper bound of each bucket, per token of output, as in the issue.
BUCKET_BOUNDS = (
    (Decimal("0.000001"), "free"),
    (Decimal("0.000005"), "ultra-low"),
    (Decimal("0.00002"), "low"),
    (Decimal("0.0001"), "medium"),
    (Decimal("0.001"), "high"),
)

# --- independent expectations ------------------------------------------------------------


def expected_bucket(output_text: str | None) -> str | None:
    if output_text is None:
        return None
    price = Decimal(output_text)
    return next((name for bound, name in BUCKET_BOUNDS if price < bound), "premium")


def expected_time(seconds: int | None) -> datetime | None:
    """A recorded time: every fixture serves whole unix seconds, below 10^11 (the year 5138),
    where a number stops meaning seconds."""
    if seconds is None:
        return None
    assert isinstance(seconds, int) and 0 <= seconds < 100_000_000_000, seconds
    return EPOCH + timedelta(seconds=seconds)


def expected_canonical_id(model_id: str) -> str:
    """``provider/model`` lowercased, dots in the model part written as dashes (no recorded
    Vercel provider has an alias; the alias rule is pinned by its own test)."""
    provider, _, name = model_id.partition("/")
    return f"{provider.lower()}/{name.lower().replace('.', '-')}"


def expected_capabilities(raw: dict[str, Any]) -> list[str]:
    capabilities = list(raw.get("tags") or [])
    if raw.get("type") and raw["type"] not in capabilities:
        capabilities.append(raw["type"])
    return capabilities


# --- assertions --------------------------------------------------------------------------


def assert_missing(value: Any) -> None:
    """Missing in any of pandas' spellings; the exact spelling is pinned by dedicated tests."""
    assert not isinstance(value, list | dict) and pd.isna(value), f"expected missing: {value!r}"


def assert_per_million(value: Any, per_token_text: str | None) -> None:
    """Exactly the shifted string: equal value and identical digits/exponent."""
    if per_token_text is None:
        assert_missing(value)
        return
    expected = Decimal(shift_six(per_token_text))
    assert isinstance(value, Decimal)
    assert value == expected
    assert value.as_tuple() == expected.as_tuple()


def assert_tiers_kept(stored: Any, served: list[dict[str, Any]] | None) -> None:
    """Every tier, in order: cost numerically equal, min defaulted to 0, max only when given."""
    if served is None:
        assert_missing(stored)
        return
    assert isinstance(stored, list)
    assert len(stored) == len(served)
    for kept, given in zip(stored, served, strict=True):
        assert isinstance(kept["cost"], str)
        assert PLAIN_DECIMAL.fullmatch(kept["cost"]), kept["cost"]
        assert Decimal(kept["cost"]) == Decimal(given["cost"])
        assert kept["min"] == given.get("min", 0)
        assert ("max" in kept) == ("max" in given)
        if "max" in given:
            assert kept["max"] == given["max"]
        others = {"cost", "min", "max"}
        assert {k: v for k, v in kept.items() if k not in others} == {
            k: v for k, v in given.items() if k not in others
        }


def assert_same_json(actual: Any, expected: Any) -> None:
    """Identical JSON, including key order and int-vs-float, not just Python equality."""
    assert json.dumps(actual) == json.dumps(expected)


# --- fixture access ----------------------------------------------------------------------


@cache
def normalized_snapshot(name: str) -> NormalizedModels:
    """Each snapshot is transformed once per session; tests only read the result."""
    return normalize_models(snapshot_models(name), VERCEL)


@cache
def rows_by_id(name: str) -> dict[str, dict[str, Any]]:
    return {row["model_id"]: row for row in normalized_snapshot(name).frame.to_dict("records")}


def served_model(name: str, model_id: str) -> dict[str, Any]:
    """A fresh copy of one model exactly as the snapshot serves it."""
    return next(model for model in snapshot_models(name) if model["id"] == model_id)


def fixture_row(name: str, model_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return rows_by_id(name)[model_id], served_model(name, model_id)


def model_text(model: dict[str, Any]) -> str:
    """A served model's JSON text, key order kept (the raw-JSON check pins key order too)."""
    return json.dumps(model, ensure_ascii=False, separators=(",", ":"))


@cache
def first_occurrences() -> dict[str, tuple[str, str]]:
    """Each distinct served model JSON → the (snapshot, model id) that first serves it.

    Most models are served unchanged by many snapshots (1,837 pairs hold 964 distinct model
    JSONs); each distinct one is checked once. That the same JSON gives the same row in every
    snapshot is checked per snapshot by ``test_snapshot_rows_equal_their_first_occurrences``.
    """
    first: dict[str, tuple[str, str]] = {}
    for name, _ in vercel_snapshots():
        for model in snapshot_models(name):
            first.setdefault(model_text(model), (name, model["id"]))
    return first


def snapshot_model_params() -> list[Any]:
    """One param per distinct served model, named after its first (snapshot, model id)."""
    return [
        pytest.param(name, model_id, id=f"{name}::{model_id}")
        for name, model_id in first_occurrences().values()
    ]


SNAPSHOT_NAMES = [name for name, _ in vercel_snapshots()]
SNAPSHOT_MODELS = snapshot_model_params()


# --- every recorded snapshot -------------------------------------------------------------


@pytest.mark.parametrize("name", SNAPSHOT_NAMES)
def test_snapshot_keeps_every_model_in_order(name: str) -> None:
    """Real gateway data must never be skipped: one clean row per served model, in order."""
    served = snapshot_models(name)
    untouched = copy.deepcopy(served)
    result = normalize_models(served, VERCEL)
    assert result.skipped == []
    assert result.broken == []
    assert result.stale == 0
    assert len(result.frame) == len(served)
    assert list(result.frame["model_id"]) == [model["id"] for model in untouched]
    assert set(result.frame["source"]) == {"vercel"}
    assert_same_json(served, untouched)  # the input list is not modified


def comparable(value: Any) -> Any:
    """A frame cell in a form that compares exactly: Decimals by digits and exponent, JSON by
    text (key order included); missing values in any spelling compare equal (their spelling
    is pinned by dedicated tests)."""
    if isinstance(value, list | dict):
        return ("json", json.dumps(value))
    if pd.isna(value):
        return ("missing",)
    if isinstance(value, Decimal):
        return ("decimal", value.as_tuple())
    return (type(value).__name__, value)


@pytest.mark.parametrize("name", SNAPSHOT_NAMES)
def test_snapshot_rows_equal_their_first_occurrences(name: str) -> None:
    """A model's row depends on its JSON alone, not on the snapshot around it, so checking each
    distinct model JSON once (SNAPSHOT_MODELS) covers every (snapshot, model) pair."""
    first = first_occurrences()
    rows = rows_by_id(name)
    for model in snapshot_models(name):
        first_name, model_id = first[model_text(model)]
        assert model_id == model["id"]
        row, first_row = rows[model_id], rows_by_id(first_name)[model_id]
        assert row.keys() == first_row.keys()
        assert {k: comparable(v) for k, v in row.items()} == {
            k: comparable(v) for k, v in first_row.items()
        }, (name, model_id, first_name)


@pytest.mark.parametrize(("name", "model_id"), SNAPSHOT_MODELS)
def test_snapshot_model_prices_and_bucket(name: str, model_id: str) -> None:
    """Per-1M prices are the served per-token text shifted exactly; bucket from output price."""
    row, raw = fixture_row(name, model_id)
    pricing = raw.get("pricing") or {}
    for flat_key, tier_key, column in TOKEN_PRICES:
        assert_per_million(row[column], served_base_price(pricing, flat_key, tier_key))
    if "web_search" in pricing:
        assert row["web_search_cost"] == Decimal(pricing["web_search"])
        assert row["web_search_cost"].as_tuple() == Decimal(pricing["web_search"]).as_tuple()
    else:
        assert_missing(row["web_search_cost"])
    bucket = expected_bucket(served_base_price(pricing, "output", "output_tiers"))
    if bucket is None:
        assert_missing(row["cost_bucket"])
    else:
        assert row["cost_bucket"] == bucket


@pytest.mark.parametrize(("name", "model_id"), SNAPSHOT_MODELS)
def test_snapshot_model_tiers_are_kept_whole(name: str, model_id: str) -> None:
    """Tiered prices are stored in served order with every band, not just the first."""
    row, raw = fixture_row(name, model_id)
    pricing = raw.get("pricing") or {}
    for tier_key in TIER_KEYS:
        assert_tiers_kept(row[tier_key], pricing.get(tier_key))


@pytest.mark.parametrize(("name", "model_id"), SNAPSHOT_MODELS)
def test_snapshot_model_descriptive_columns(name: str, model_id: str) -> None:
    """Identity, capabilities, flags, limits and times map from the served fields."""
    row, raw = fixture_row(name, model_id)
    tags = raw.get("tags") or []
    assert row["source"] == "vercel"
    assert row["model_id"] == raw["id"]
    assert row["canonical_model_id"] == expected_canonical_id(raw["id"])
    assert row["price_role"] == "gateway"
    assert row["provider"] == raw["id"].split("/", 1)[0]
    assert row["stale_reason"] is None
    assert row["kept_columns"] == []
    for column, key in (
        ("model_name", "name"),
        ("owned_by", "owned_by"),
        ("description", "description"),
        ("model_type", "type"),
    ):
        if key in raw:
            assert row[column] == raw[key]
        else:
            assert_missing(row[column])
    assert row["capabilities"] == expected_capabilities(raw)
    assert row["supports_function_calling"] == ("tool-use" in tags)
    assert row["supports_vision"] == ("vision" in tags)
    assert row["supports_reasoning"] == ("reasoning" in tags)
    for column, key in (("context_window", "context_window"), ("max_output_tokens", "max_tokens")):
        if key in raw:
            assert row[column] == raw[key]
        else:
            assert_missing(row[column])
    for column, key in (("released_at", "released"), ("gateway_created_at", "created")):
        expected = expected_time(raw.get(key))
        if expected is None:
            assert_missing(row[column])
        else:
            assert row[column] == expected
    assert_missing(row["deprecated_at"])


@pytest.mark.parametrize(("name", "model_id"), SNAPSHOT_MODELS)
def test_snapshot_model_keeps_raw_and_pricing_json(name: str, model_id: str) -> None:
    """Whatever we do not model survives in the stored raw and pricing JSON, byte for byte."""
    row, raw = fixture_row(name, model_id)
    assert_same_json(row["raw"], raw)
    assert_same_json(row["pricing"], raw.get("pricing"))


# --- synthetic variations of real models -------------------------------------------------

FIRST_ID = "openai/gpt-5"
MIDDLE_ID = "anthropic/claude-sonnet-4.6"  # has all four tier lists and web_search
LAST_ID = "google/veo-3.0-generate-001"


def latest_model(model_id: str) -> dict[str, Any]:
    return served_model(LATEST, model_id)


def row_of(model: dict[str, Any]) -> dict[str, Any]:
    """Transform one model and return its only row (it must not be skipped, broken or stale)."""
    result = normalize_models([model], VERCEL)
    assert result.skipped == [] and result.broken == []
    assert len(result.frame) == 1
    row = result.frame.to_dict("records")[0]
    assert (row["stale_reason"], row["kept_columns"]) == (None, []), row["stale_reason"]
    return row


def changed(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    """A maker that sets a dotted path (``pricing.input``) of a model copy to ``value``."""

    def make(model: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        target = model
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value
        return model

    return make


def dropped(key: str) -> Callable[[dict[str, Any]], Any]:
    def make(model: dict[str, Any]) -> Any:
        del model[key]
        return model

    return make


def transform_with_broken_middle(
    make: Callable[[dict[str, Any]], Any],
) -> NormalizedModels:
    """Two good real models around one broken copy of a third."""
    return normalize_models(
        [latest_model(FIRST_ID), make(latest_model(MIDDLE_ID)), latest_model(LAST_ID)], VERCEL
    )


def assert_only_middle_skipped(result: NormalizedModels, model_id: str | None) -> str:
    """An entry without a usable id: skipped (not broken), the good neighbours still go
    through; returns its reason."""
    assert list(result.frame["model_id"]) == [FIRST_ID, LAST_ID]
    assert result.broken == []
    assert len(result.skipped) == 1
    skipped = result.skipped[0]
    assert type(skipped) is SkippedModel
    assert skipped.index == 1
    assert skipped.model_id == model_id
    assert skipped.reason
    return skipped.reason


def assert_only_middle_broken(result: NormalizedModels) -> str:
    """A model whose essential field (its prices) is broken, or that holds a value Postgres
    cannot store, is a BrokenModel under its id (for the sync to keep its stored row), not a
    frame row; the good neighbours still go through. Returns its reason."""
    assert list(result.frame["model_id"]) == [FIRST_ID, LAST_ID]
    assert result.skipped == []
    assert len(result.broken) == 1
    broken = result.broken[0]
    assert isinstance(broken, BrokenModel)
    assert (broken.index, broken.model_id) == (1, MIDDLE_ID)
    assert broken.reason
    return broken.reason


def assert_middle_kept_stale(
    result: NormalizedModels, served: dict[str, Any], kept_columns: list[str]
) -> dict[str, Any]:
    """A broken optional field keeps the model: in served order, with every column outside
    ``kept_columns`` exactly as the intact model's, the served JSON whole in ``raw``, and the
    columns the broken field feeds listed to keep their stored values. Returns its row."""
    assert list(result.frame["model_id"]) == [FIRST_ID, MIDDLE_ID, LAST_ID]
    assert result.skipped == [] and result.broken == []
    assert result.stale == 1
    first, middle, last = result.frame.to_dict("records")
    for neighbour in (first, last):
        assert (neighbour["stale_reason"], neighbour["kept_columns"]) == (None, [])
    assert middle["kept_columns"] == kept_columns
    assert isinstance(middle["stale_reason"], str) and middle["stale_reason"]
    intact = row_of(latest_model(MIDDLE_ID))
    for column in FRAME_COLUMNS:
        if column not in kept_columns and column != "raw":
            assert comparable(middle[column]) == comparable(intact[column]), column
    assert_same_json(middle["raw"], served)
    return middle


def names_field(reason: str, field: str) -> bool:
    """Whether ``reason`` names ``field`` as a whole dotted path, not as part of another."""
    return re.search(rf"(?<![\w.]){re.escape(field)}(?!\w)", reason) is not None


@pytest.mark.parametrize(
    ("make", "reported_id"),
    [
        pytest.param(dropped("id"), None, id="no-id"),
        pytest.param(changed("id", ""), "", id="empty-id"),
        pytest.param(changed("id", "   "), "   ", id="blank-id"),
        pytest.param(changed("id", 42), None, id="int-id"),
    ],
)
def test_entry_without_a_usable_id_is_skipped_with_reason_naming_the_id(
    make: Callable[[dict[str, Any]], Any], reported_id: str | None
) -> None:
    """Without an id there is no catalog row to keep: the entry is skipped, costing only itself."""
    reason = assert_only_middle_skipped(transform_with_broken_middle(make), reported_id)
    assert names_field(reason, "id"), reason


@pytest.mark.parametrize(
    ("make", "field"),
    [
        pytest.param(changed("pricing.input", "abc"), "pricing.input", id="price-abc"),
        pytest.param(changed("pricing.input", "NaN"), "pricing.input", id="price-nan"),
        pytest.param(changed("pricing.input", True), "pricing.input", id="price-bool"),
        pytest.param(changed("pricing.output", "-0.000001"), "pricing.output", id="price-negative"),
        pytest.param(changed("pricing.web_search", "-10"), "pricing.web_search", id="search-neg"),
        pytest.param(changed("pricing", "free"), "pricing", id="pricing-string"),
        pytest.param(
            changed("pricing.input_tiers.0.cost", "x"),
            "pricing.input_tiers.0.cost",
            id="tier-cost-abc",
        ),
        pytest.param(
            changed("pricing.output_tiers.1", {"min": 200001}),
            "pricing.output_tiers.1.cost",
            id="tier-without-cost",
        ),
        pytest.param(
            changed("pricing.input_tiers.0.min", "zero"),
            "pricing.input_tiers.0.min",
            id="tier-min-string",
        ),
        pytest.param(
            changed("pricing.output_tiers", "cheap"), "pricing.output_tiers", id="tiers-string"
        ),
        # Unstorable anywhere (Postgres text/jsonb refuse NUL and lone surrogates): broken even
        # in an optional field, since the stored raw JSON would carry it.
        pytest.param(changed("description", "bad\x00text"), "description", id="nul-description"),
        pytest.param(changed("pricing.input", "0.000003\x00"), "pricing.input", id="nul-price"),
        pytest.param(changed("name", "bad \ud800"), "name", id="lone-surrogate"),
        pytest.param(changed("x_unmodelled", "a\x00b"), "x_unmodelled", id="nul-unknown-key"),
    ],
)
def test_broken_price_or_unstorable_value_makes_a_broken_model_naming_the_field(
    make: Callable[[dict[str, Any]], Any], field: str
) -> None:
    """Money is never half-read: one broken price makes the model broken (kept as stored by
    the sync, never re-priced from a guess), and its reason says which field is wrong."""
    reason = assert_only_middle_broken(transform_with_broken_middle(make))
    assert names_field(reason, field), reason


TAG_COLUMNS = [
    "capabilities",
    "supports_function_calling",
    "supports_reasoning",
    "supports_vision",
]


@pytest.mark.parametrize(
    ("key", "value", "field", "kept_columns"),
    [
        pytest.param("context_window", "big", "context_window", ["context_window"], id="ctx-big"),
        pytest.param("context_window", -1, "context_window", ["context_window"], id="ctx-neg"),
        pytest.param("context_window", 1.5, "context_window", ["context_window"], id="ctx-frac"),
        pytest.param("context_window", True, "context_window", ["context_window"], id="ctx-bool"),
        pytest.param("max_tokens", "8192", "max_tokens", ["max_output_tokens"], id="max-tok-str"),
        pytest.param("tags", "vision", "tags", TAG_COLUMNS, id="tags-string"),
        pytest.param("tags", ["vision", 7], "tags.1", TAG_COLUMNS, id="tag-int"),
        pytest.param("name", 123, "name", ["model_name"], id="name-int"),
        pytest.param("owned_by", ["x"], "owned_by", ["owned_by", "provider"], id="owner-list"),
        pytest.param("description", {}, "description", ["description"], id="description-object"),
        pytest.param("type", ["language"], "type", ["capabilities", "model_type"], id="type-list"),
        pytest.param("created", "yesterday", "created", ["gateway_created_at"], id="created-text"),
        pytest.param("released", -5, "released", ["released_at"], id="released-negative"),
        pytest.param(
            "deprecated_at", "soon", "deprecated_at", ["deprecated_at"], id="deprecated-text"
        ),
    ],
)
def test_broken_optional_field_keeps_the_model_stale_naming_the_field(
    key: str, value: Any, field: str, kept_columns: list[str]
) -> None:
    """A served model is never lost to one drifted optional field: it stays in the frame with
    every other field read, a stale reason naming the field, and the field's columns listed to
    keep their stored values (written out here from the field → column mapping)."""
    broken = changed(key, value)(latest_model(MIDDLE_ID))
    served = copy.deepcopy(broken)
    row = assert_middle_kept_stale(
        transform_with_broken_middle(lambda _: broken), served, kept_columns
    )
    assert names_field(row["stale_reason"], field), row["stale_reason"]


def test_kept_columns_hold_what_the_model_says_without_the_broken_field() -> None:
    """In the frame, a broken field's columns read as if it were absent (the sync then keeps
    the stored values; a model new to the catalog gets nothing invented)."""
    model = latest_model(MIDDLE_ID)
    model["context_window"] = "big"
    model["released"] = "yesterday"
    model["tags"] = "vision"
    row = normalize_models([model], VERCEL).frame.to_dict("records")[0]
    assert row["kept_columns"] == ["capabilities", "context_window", "released_at",
                                   "supports_function_calling", "supports_reasoning",
                                   "supports_vision"]  # fmt: skip
    assert_missing(row["context_window"])
    assert_missing(row["released_at"])
    assert model["type"] == "language"
    assert row["capabilities"] == ["language"]  # the type is still read; the tags are not
    for flag in ("supports_function_calling", "supports_reasoning", "supports_vision"):
        assert row[flag] is False, flag


@pytest.mark.parametrize(
    "not_a_model",
    [
        pytest.param("openai/gpt-5", id="string"),
        pytest.param(None, id="null"),
        pytest.param(["openai/gpt-5"], id="list"),
        pytest.param(7, id="number"),
    ],
)
def test_entry_that_is_not_an_object_is_skipped(not_a_model: Any) -> None:
    """A non-object entry has no fields to name; the reason says it is not an object."""
    result = transform_with_broken_middle(lambda _: not_a_model)
    reason = assert_only_middle_skipped(result, None)
    assert "not an object" in reason
    assert result.skipped[0].label() == "<model #1>"


def test_reason_names_every_broken_field() -> None:
    """With two bad fields, fixing the one reported must not reveal a second surprise."""

    def make(model: dict[str, Any]) -> Any:
        return changed("pricing.input", "-1")(changed("context_window", "big")(model))

    reason = assert_only_middle_broken(transform_with_broken_middle(make))
    assert names_field(reason, "context_window"), reason
    assert names_field(reason, "pricing.input"), reason


def test_stale_reason_names_every_broken_optional_field() -> None:
    """Two broken optional fields: both named, both fields' columns kept, nothing else."""
    broken = changed("created", "yesterday")(
        changed("context_window", "big")(latest_model(MIDDLE_ID))
    )
    served = copy.deepcopy(broken)
    row = assert_middle_kept_stale(
        transform_with_broken_middle(lambda _: broken),
        served,
        ["context_window", "gateway_created_at"],
    )
    assert names_field(row["stale_reason"], "context_window"), row["stale_reason"]
    assert names_field(row["stale_reason"], "created"), row["stale_reason"]


def test_unknown_fields_are_accepted_and_kept_in_raw() -> None:
    """The gateway adds keys faster than we model them; new keys must not fail a model."""
    model = latest_model(MIDDLE_ID)
    model["brand_new_field"] = {"nested": [1, "two"]}
    model["pricing"]["audio_per_second"] = "0.0001"
    model["pricing"]["input_tiers"][0]["label"] = "short context"
    served = copy.deepcopy(model)
    row = row_of(model)
    assert_same_json(row["raw"], served)
    assert_same_json(row["pricing"], served["pricing"])
    assert row["input_tiers"][0]["label"] == "short context"
    assert_per_million(row["cost_per_1m_input"], "0.000003")


def test_duplicate_id_keeps_the_first_and_skips_the_later() -> None:
    """The stored price must not depend on list order, so the first occurrence wins."""
    first = latest_model(MIDDLE_ID)
    later = latest_model(MIDDLE_ID)
    later["pricing"]["input"] = "0.000009"
    result = normalize_models([first, latest_model(FIRST_ID), later], VERCEL)
    assert list(result.frame["model_id"]) == [MIDDLE_ID, FIRST_ID]
    assert len(result.skipped) == 1
    skipped = result.skipped[0]
    assert (skipped.index, skipped.model_id) == (2, MIDDLE_ID)
    assert "duplicate" in skipped.reason
    kept = result.frame.set_index("model_id").loc[MIDDLE_ID]
    assert_per_million(kept["cost_per_1m_input"], "0.000003")


@pytest.mark.parametrize(
    "model_id", ["meituan/longcat-flash-chat", "mistral/devstral-2", "zai/glm-4.6v-flash"]
)
def test_empty_pricing_is_valid_with_no_prices_and_no_bucket(model_id: str) -> None:
    """Real models served with ``"pricing": {}`` among priced ones: all prices and bucket None."""
    row = rows_by_id(LATEST)[model_id]
    for _, tier_key, column in TOKEN_PRICES:
        assert row[column] is None
        assert row[tier_key] is None
    assert row["web_search_cost"] is None
    assert row["cost_bucket"] is None
    assert row["pricing"] == {}


def test_missing_pricing_key_is_valid_with_no_prices() -> None:
    """A model without any pricing key is still catalogued, with unknown prices."""
    model = latest_model(FIRST_ID)
    del model["pricing"]
    row = row_of(model)
    for _, _, column in TOKEN_PRICES:
        assert_missing(row[column])
    assert row["cost_bucket"] is None
    assert_missing(row["pricing"])


def test_issue_example_price_becomes_exactly_0_12_per_million() -> None:
    """The issue's example end to end: "0.00000012" per token is stored as exactly 0.12."""
    model = latest_model(FIRST_ID)
    model["pricing"] = {"input": "0.00000012", "output": "0.00000012"}
    row = row_of(model)
    for column in ("cost_per_1m_input", "cost_per_1m_output"):
        assert row[column] == Decimal("0.12")
        assert str(row[column]) == "0.12"
        assert row[column].as_tuple() == (0, (1, 2), -2)


def test_web_search_cost_is_the_price_as_given() -> None:
    """web_search is per search, not per token, so it is not scaled to per-million."""
    model = latest_model(MIDDLE_ID)
    model["pricing"]["web_search"] = "0.035"
    row = row_of(model)
    assert row["web_search_cost"] == Decimal("0.035")
    assert row["web_search_cost"].as_tuple() == Decimal("0.035").as_tuple()


def test_flat_price_wins_over_first_tier() -> None:
    """The flat key is the base price when served, even if the first band says otherwise."""
    model = latest_model(MIDDLE_ID)
    model["pricing"]["input"] = "0.000004"
    assert_per_million(row_of(model)["cost_per_1m_input"], "0.000004")


def test_first_tier_is_the_base_price_without_a_flat_key() -> None:
    """Without flat keys, each per-1M column and the bucket come from the first band."""
    model = latest_model(MIDDLE_ID)
    for flat_key, _, _ in TOKEN_PRICES:
        del model["pricing"][flat_key]
    row = row_of(model)
    assert_per_million(row["cost_per_1m_input"], "0.000003")
    assert_per_million(row["cost_per_1m_output"], "0.000015")
    assert_per_million(row["cost_per_1m_cache_read"], "0.0000003")
    assert_per_million(row["cost_per_1m_cache_write"], "0.00000375")
    assert row["cost_bucket"] == "low"


def test_bucket_is_unknown_without_any_output_price() -> None:
    """An input-only model (like newer embeddings) has no bucket rather than "premium"."""
    model = latest_model(MIDDLE_ID)
    del model["pricing"]["output"], model["pricing"]["output_tiers"]
    row = row_of(model)
    assert row["cost_bucket"] is None
    assert_missing(row["cost_per_1m_output"])
    assert_per_million(row["cost_per_1m_input"], "0.000003")


def test_zero_output_price_is_free() -> None:
    """A served "0" is a real price (the 2025 embeddings), so it buckets as free."""
    model = latest_model(FIRST_ID)
    model["pricing"]["output"] = "0"
    row = row_of(model)
    assert row["cost_bucket"] == "free"
    assert row["cost_per_1m_output"] == 0


def test_tiers_are_kept_in_served_order_with_defaults() -> None:
    """Unsorted bands stay in order, a missing min becomes 0, and max appears only if given."""
    model = latest_model(MIDDLE_ID)
    served_tiers = [
        {"cost": "0.000006", "min": 200001},
        {"cost": "3e-6", "max": 200001},
        {"cost": "0.000009", "min": 500000, "max": 900000},
    ]
    model["pricing"]["input_tiers"] = served_tiers
    del model["pricing"]["input"]
    stored = row_of(model)["input_tiers"]
    assert stored == [
        {"cost": "0.000006", "min": 200001},
        {"cost": "0.000003", "min": 0, "max": 200001},
        {"cost": "0.000009", "min": 500000, "max": 900000},
    ]
    assert_tiers_kept(stored, served_tiers)


def test_prices_served_as_json_numbers_are_exact() -> None:
    """A JSON float like 3e-06 is read as the number the sender wrote, not its binary value."""
    model = latest_model(FIRST_ID)
    model["pricing"] = {"input": 3e-06, "output": 1.5e-05, "input_cache_read": 0}
    row = row_of(model)
    assert row["cost_per_1m_input"].as_tuple() == Decimal("3").as_tuple()
    assert row["cost_per_1m_output"].as_tuple() == Decimal("15").as_tuple()
    assert row["cost_per_1m_cache_read"] == 0
    assert row["cost_bucket"] == "low"


def test_prices_decoded_from_json_number_text_are_exact() -> None:
    """The gateway client decodes JSON fractions as Decimals of their text (decode_json): a
    price served as a number keeps the digits the sender wrote, however many there are."""
    body = (
        b'{"object":"list","data":[{"id":"acme/numbers","pricing":{"input":1.25e-06,'
        b'"output":0.0000123456789012345678901,"input_cache_read":0,"web_search":10.0}}]}'
    )
    row = row_of(decode_json(body)["data"][0])
    assert_per_million(row["cost_per_1m_input"], "0.00000125")
    assert_per_million(row["cost_per_1m_output"], "0.0000123456789012345678901")
    assert row["cost_per_1m_cache_read"] == 0
    assert row["web_search_cost"] == Decimal("10")
    assert row["web_search_cost"].as_tuple() == Decimal("10.0").as_tuple()
    assert row["cost_bucket"] == "low"


def test_long_price_keeps_every_digit_per_million() -> None:
    """A price with many significant digits must reach the per-1M column unrounded."""
    model = latest_model(FIRST_ID)
    model["pricing"] = {"input": "0.0000001234567890123456789012345678901234567"}
    assert_per_million(row_of(model)["cost_per_1m_input"], model["pricing"]["input"])


# Limits of what a model may carry, each at the limit and one step past it. The id must fit
# the catalog's unique index (1000 bytes of UTF-8, not characters); counts must fit a BIGINT.
# An id past its limit leaves nothing to key a row on (skipped); a count past its limit is a
# broken optional field (the model is kept, stale, the column keeps its stored value).
ID_1000_BYTES = "a/" + "x" * 998
ID_1000_BYTES_MULTIBYTE = "a/" + "é" * 499  # 501 characters
MAX_BIGINT = 9_223_372_036_854_775_807  # 2**63 - 1

AT_THE_LIMIT = [
    pytest.param("id", ID_1000_BYTES, "model_id", ID_1000_BYTES, id="id-1000-bytes"),
    pytest.param(
        "id", ID_1000_BYTES_MULTIBYTE, "model_id", ID_1000_BYTES_MULTIBYTE, id="id-1000-utf8-bytes"
    ),
    pytest.param("context_window", MAX_BIGINT, "context_window", MAX_BIGINT, id="ctx-max-bigint"),
    pytest.param("context_window", 0, "context_window", 0, id="ctx-zero"),
    pytest.param("max_tokens", MAX_BIGINT, "max_output_tokens", MAX_BIGINT, id="max-tok-bigint"),
]
IDS_PAST_THE_LIMIT = [
    pytest.param("a/" + "x" * 999, id="id-1001-bytes"),
    pytest.param(ID_1000_BYTES_MULTIBYTE + "x", id="id-1001-utf8-bytes"),
]
COUNTS_PAST_THE_LIMIT = [
    pytest.param("context_window", MAX_BIGINT + 1, "context_window", id="ctx-over-bigint"),
    pytest.param("context_window", -1, "context_window", id="ctx-minus-one"),
    pytest.param("max_tokens", MAX_BIGINT + 1, "max_output_tokens", id="max-tok-over-bigint"),
]


@pytest.mark.parametrize(("key", "value", "column", "expected"), AT_THE_LIMIT)
def test_values_at_their_limit_are_accepted(key: str, value: Any, column: str, expected) -> None:
    model = latest_model(MIDDLE_ID)
    model[key] = value
    assert row_of(model)[column] == expected


@pytest.mark.parametrize("value", IDS_PAST_THE_LIMIT)
def test_ids_one_byte_past_their_limit_are_skipped(value: str) -> None:
    result = transform_with_broken_middle(changed("id", value))
    reason = assert_only_middle_skipped(result, value)
    assert names_field(reason, "id"), reason


@pytest.mark.parametrize(("key", "value", "column"), COUNTS_PAST_THE_LIMIT)
def test_counts_one_step_past_their_limit_keep_the_model_stale(
    key: str, value: int, column: str
) -> None:
    broken = changed(key, value)(latest_model(MIDDLE_ID))
    served = copy.deepcopy(broken)
    row = assert_middle_kept_stale(transform_with_broken_middle(lambda _: broken), served, [column])
    assert names_field(row["stale_reason"], key), row["stale_reason"]
    assert_missing(row[column])


# Unix times: told apart by magnitude (below 10^11 seconds, below 10^14 milliseconds, below
# 10^17 microseconds; 10^17 and more refused). Each unit at its first and last value, written
# out as instants by hand (checked with ``date -u -d @99999999999`` → 5138-11-16 09:46:39 and
# ``date -u -d @100000000`` → 1973-03-03 09:46:40). ISO text is bounded by the datetime range.
TIME_FIELDS = [
    pytest.param("released", "released_at", id="released"),
    pytest.param("created", "gateway_created_at", id="created"),
    pytest.param("deprecated_at", "deprecated_at", id="deprecated_at"),
]
LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
LAST_UNIX_SECOND = datetime(5138, 11, 16, 9, 46, 39, tzinfo=UTC)  # 10^11 - 1 seconds
HUNDRED_MILLION_SECONDS = datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)  # 10^8 seconds
ACCEPTED_TIMES = [
    pytest.param(0, EPOCH, id="epoch"),
    pytest.param(99_999_999_999, LAST_UNIX_SECOND, id="last-seconds-value"),
    pytest.param(
        Decimal("99999999999.999999"),
        LAST_UNIX_SECOND.replace(microsecond=999_999),
        id="last-seconds-value-with-fraction",
    ),
    pytest.param(100_000_000_000, HUNDRED_MILLION_SECONDS, id="first-milliseconds-value"),
    pytest.param(Decimal("1E+11"), HUNDRED_MILLION_SECONDS, id="first-milliseconds-as-1e11"),
    pytest.param(
        Decimal("100000000000.5"),
        HUNDRED_MILLION_SECONDS.replace(microsecond=500),
        id="milliseconds-with-fraction",
    ),
    pytest.param(
        99_999_999_999_999,
        LAST_UNIX_SECOND.replace(microsecond=999_000),
        id="last-milliseconds-value",
    ),
    pytest.param(100_000_000_000_000, HUNDRED_MILLION_SECONDS, id="first-microseconds-value"),
    pytest.param(
        99_999_999_999_999_999,
        LAST_UNIX_SECOND.replace(microsecond=999_999),
        id="last-microseconds-value",
    ),
    pytest.param("99999999999", LAST_UNIX_SECOND, id="digits-last-seconds"),
    pytest.param("100000000000", HUNDRED_MILLION_SECONDS, id="digits-first-milliseconds"),
    pytest.param(
        "99999999999999999", LAST_UNIX_SECOND.replace(microsecond=999_999), id="digits-last-µs"
    ),
    pytest.param("9999-12-31T23:59:59Z", LAST_SECOND, id="iso-last-second"),
    pytest.param("2024-09", datetime(2024, 9, 1, tzinfo=UTC), id="iso-year-month"),
]
REFUSED_TIMES = [
    pytest.param(100_000_000_000_000_000, id="1e17"),
    pytest.param("100000000000000000", id="digits-1e17"),
    pytest.param(-1, id="before-epoch"),
    pytest.param("9999-12-31T23:59:59-01:00", id="iso-past-year-9999-in-utc"),
    pytest.param("0001-01-01T00:00:00+01:00", id="iso-before-year-1-in-utc"),
]


@pytest.mark.parametrize(("key", "column"), TIME_FIELDS)
@pytest.mark.parametrize(("value", "expected"), ACCEPTED_TIMES)
def test_times_at_each_unit_limit_are_read_in_their_unit(
    key: str, column: str, value: Any, expected: datetime
) -> None:
    model = latest_model(MIDDLE_ID)
    model[key] = value
    assert row_of(model)[column] == expected


@pytest.mark.parametrize(("key", "column"), TIME_FIELDS)
@pytest.mark.parametrize("value", REFUSED_TIMES)
def test_times_past_the_last_unit_keep_the_model_stale(key: str, column: str, value: Any) -> None:
    """A time that cannot be read is a broken optional field: the model stays, its time column
    keeps the stored value, and the reason names the field."""
    broken = changed(key, value)(latest_model(MIDDLE_ID))
    served = copy.deepcopy(broken)
    row = assert_middle_kept_stale(transform_with_broken_middle(lambda _: broken), served, [column])
    assert names_field(row["stale_reason"], key), row["stale_reason"]
    assert_missing(row[column])


def test_provider_is_the_part_before_the_first_slash() -> None:
    """Ids may hold more than one slash; only the first separates the provider."""
    model = latest_model(FIRST_ID)
    model["id"] = "vendor/family/model-1"
    assert row_of(model)["provider"] == "vendor"


@pytest.mark.parametrize(
    ("model_id", "canonical"),
    [
        pytest.param("X-AI/Grok-4.1-Fast", "xai/grok-4-1-fast", id="alias-and-case"),
        pytest.param("meta-llama/llama-3.3-70b", "meta/llama-3-3-70b", id="alias-meta"),
        pytest.param("vendor/family/model-1.5", "vendor/family/model-1-5", id="two-slashes"),
    ],
)
def test_canonical_id_unifies_provider_alias_case_and_dots(model_id: str, canonical: str) -> None:
    """The cross-source identity: provider alias unified, lowercase, dots as dashes (by hand)."""
    model = latest_model(FIRST_ID)
    model["id"] = model_id
    row = row_of(model)
    assert (row["model_id"], row["canonical_model_id"]) == (model_id, canonical)
    assert row["price_role"] == "gateway"


def test_type_already_in_tags_is_not_repeated_in_capabilities() -> None:
    """Capabilities are a set of labels; the type is added only when it is not a tag already."""
    model = latest_model(FIRST_ID)
    model["tags"] = ["language", "vision"]
    model["type"] = "language"
    assert row_of(model)["capabilities"] == ["language", "vision"]


# --- the frame ---------------------------------------------------------------------------


# The per-row marks after the catalog columns (not catalog content: the sync reads them).
MARKS = {"stale_reason": "object", "kept_columns": "object"}


def assert_declared_shape(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == [*FRAME_COLUMNS, *MARKS]
    assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == FRAME_DTYPES | MARKS


def test_frame_has_declared_columns_and_dtypes() -> None:
    """The loader relies on the column order and the nullable dtypes declared in FRAME_DTYPES;
    the catalog columns include each row's canonical id and price role."""
    assert FRAME_COLUMNS[:4] == ("source", "model_id", "canonical_model_id", "price_role")
    assert FRAME_DTYPES["canonical_model_id"] == FRAME_DTYPES["price_role"] == "object"
    assert_declared_shape(normalized_snapshot(LATEST).frame)


@pytest.mark.parametrize(
    "models",
    [
        pytest.param([], id="no-models"),
        pytest.param([{"pricing": {}}, "junk"], id="only-invalid-models"),
    ],
)
def test_empty_frame_still_has_declared_columns_and_dtypes(models: list[Any]) -> None:
    """A run with nothing to store must still produce a frame the loader can read."""
    frame = normalize_models(models, VERCEL).frame
    assert frame.empty
    assert_declared_shape(frame)


def test_missing_optional_values_stay_missing_in_nullable_columns() -> None:
    """A model without limits or times must not turn Int64 into float or flags into objects."""
    bare = {"id": "acme/bare"}
    full = latest_model(FIRST_ID)
    frame = normalize_models([bare, full], VERCEL).frame
    assert_declared_shape(frame)
    bare_row, full_row = frame.iloc[0], frame.iloc[1]
    for column in ("context_window", "max_output_tokens", "released_at", "gateway_created_at"):
        assert_missing(bare_row[column])
    assert full_row["context_window"] == 400000
    assert full_row["max_output_tokens"] == 128000
    assert not pd.isna(bare_row["supports_vision"])
    assert not bare_row["supports_vision"]
    assert full_row["supports_vision"]
    assert bare_row["capabilities"] == []
    assert bare_row["provider"] == "acme"


def test_missing_object_values_are_none_even_beside_present_ones() -> None:
    """A missing text or price is None whatever the neighbouring rows hold, never a float NaN."""
    frame = normalize_models([latest_model(FIRST_ID), {"id": "acme/bare"}], VERCEL).frame
    bare_row = frame.iloc[1]
    for column in ("model_name", "owned_by", "description", "model_type", "cost_bucket"):
        assert bare_row[column] is None, f"{column}: {bare_row[column]!r}"
    for _, _, column in TOKEN_PRICES:
        assert bare_row[column] is None, f"{column}: {bare_row[column]!r}"


# --- the cycle collector paused for one pass ---------------------------------------------------
# The collector is process-wide: a transform that left it off would let every later reference
# cycle in the process (a Dagster run worker, the API) leak until exit.


def test_normalize_runs_with_the_cycle_collector_paused_and_restores_it() -> None:
    import gc

    seen: list[bool] = []

    class Probe(dict):
        """A served model that records whether the collector is on while it is read."""

        def items(self):  # noqa: ANN202 - the transform reads the model's keys once or more
            seen.append(gc.isenabled())
            return super().items()

    assert gc.isenabled()
    result = normalize_models([Probe({"id": "acme/probe", "pricing": {}})], VERCEL)
    assert list(result.frame["model_id"]) == ["acme/probe"]
    assert seen and not any(seen)
    assert gc.isenabled()


def test_the_cycle_collector_is_restored_after_an_error_and_left_off_if_it_was_off() -> None:
    import gc

    from model_sync.transform import cycle_collection_paused

    with pytest.raises(RuntimeError), cycle_collection_paused():
        assert not gc.isenabled()
        raise RuntimeError("a failing pass")
    assert gc.isenabled()
    gc.disable()
    try:
        with cycle_collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
