"""Served models are never lost: timestamps in any unit, broken fields, broken models, and the
schema-drift alarm — on the real 2026-03-05 response with drift applied the way upstreams
drift (a unit change, a price turned into a number or an object, a new nested price kind, a
vanished field, one broken model among hundreds, a model that breaks and later recovers).

Every scenario ends with every served model active, every previously valid value intact, and
the drift reported. Expectations come from the fixture's JSON and the rules as the README
states them, never from the code under test.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dagster import AssetCheckSeverity, AssetKey

from model_sync.drift import profile_models
from model_sync.sources import get_source
from model_sync.sources.base import parse_timestamp
from model_sync.transform import normalize_models
from model_sync_tests.conftest import run_logs
from model_sync_tests.snapshots import snapshot_models

LATEST = "models-2026-03-05.json"
VERCEL = get_source("vercel")
PATH = "/v1/models"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Rows as users read them: every column the sync owns.
CATALOG_COLUMNS = (
    "model_id, model_name, description, model_type, context_window, max_output_tokens, "
    "released_at, gateway_created_at, deprecated_at, capabilities, cost_per_1m_input::text, "
    "cost_per_1m_output::text, cost_per_1m_cache_read::text, cost_per_1m_cache_write::text, "
    "web_search_cost::text, input_tiers, output_tiers, pricing, is_active"
)


def serve_models(httpserver, models: list) -> str:
    httpserver.clear()
    body = json.dumps({"object": "list", "data": models}).encode()
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")
    return httpserver.url_for(PATH)


def serve_text(httpserver, body: str) -> str:
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")
    return httpserver.url_for(PATH)


def catalog(db) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in db.execute(f"SELECT {CATALOG_COLUMNS} FROM ai_models")}


def metadata(result, name: str) -> dict:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey(["vercel", name])
    ]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def check(result, name: str):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def models_by_id(models: list[dict]) -> dict[str, dict]:
    return {model["id"]: model for model in models}


# --- timestamps: one instant from seconds, milliseconds, microseconds or ISO text ---------

# Each boundary of the documented rule (below 10^11 seconds, below 10^14 milliseconds, below
# 10^17 microseconds), a hair either side, and the real unit change (deprecated_at in ms).
TIMESTAMPS = [
    (0, EPOCH),
    (1755815280, datetime(2025, 8, 21, 22, 28, tzinfo=UTC)),
    (1755815280000, datetime(2025, 8, 21, 22, 28, tzinfo=UTC)),
    (1755815280000000, datetime(2025, 8, 21, 22, 28, tzinfo=UTC)),
    (1767225600000, datetime(2026, 1, 1, tzinfo=UTC)),
    (99_999_999_999, EPOCH + timedelta(seconds=99_999_999_999)),
    (100_000_000_000, EPOCH + timedelta(milliseconds=100_000_000_000)),
    (99_999_999_999_999, EPOCH + timedelta(milliseconds=99_999_999_999_999)),
    (100_000_000_000_000, EPOCH + timedelta(microseconds=100_000_000_000_000)),
    (99_999_999_999_999_999, EPOCH + timedelta(microseconds=99_999_999_999_999_999)),
    (Decimal("1755815280.5"), datetime(2025, 8, 21, 22, 28, 0, 500000, tzinfo=UTC)),
    (Decimal("1755815280000.25"), datetime(2025, 8, 21, 22, 28, 0, 250, tzinfo=UTC)),
    ("1755815280", datetime(2025, 8, 21, 22, 28, tzinfo=UTC)),
    ("1767225600000", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2025-08-21T22:28:00Z", datetime(2025, 8, 21, 22, 28, tzinfo=UTC)),
    ("2025-08-22T00:28:00+02:00", datetime(2025, 8, 21, 22, 28, tzinfo=UTC)),
    ("2025-08-21", datetime(2025, 8, 21, tzinfo=UTC)),
]


@pytest.mark.parametrize(("served", "instant"), TIMESTAMPS, ids=[repr(t[0]) for t in TIMESTAMPS])
def test_timestamps_read_as_one_instant_from_any_unit(served, instant):
    assert parse_timestamp(served) == instant


@pytest.mark.parametrize(
    "served", [10**17, -1, "soon", True, None, [1], "1e5", Decimal("NaN"), float("inf")]
)
def test_values_that_fit_no_unit_are_refused(served):
    with pytest.raises(ValueError):
        parse_timestamp(served)


# --- the transform, per field -----------------------------------------------------------


def test_a_broken_optional_field_keeps_the_model_and_names_the_columns_it_feeds():
    [served] = [m for m in snapshot_models(LATEST) if m["id"] == "openai/gpt-5"]
    served["context_window"] = "huge"
    served["deprecated_at"] = "next spring"
    result = normalize_models([served], VERCEL)
    assert result.broken == [] and result.skipped == []
    [row] = result.frame.to_dict("records")
    assert row["model_id"] == "openai/gpt-5"
    assert sorted(row["kept_columns"]) == ["context_window", "deprecated_at"]
    assert "context_window" in row["stale_reason"] and "deprecated_at" in row["stale_reason"]
    # The fields that did parse are used.
    assert row["cost_per_1m_input"] == Decimal(served["pricing"]["input"]) * 10**6
    assert row["max_output_tokens"] == served["max_tokens"]


def test_a_broken_price_makes_the_whole_model_broken_never_half_read():
    [served] = [m for m in snapshot_models(LATEST) if m["id"] == "openai/gpt-5"]
    served["pricing"]["output"] = {"amount": served["pricing"]["output"]}
    result = normalize_models([served], VERCEL)
    assert len(result.frame) == 0
    [broken] = result.broken
    assert broken.model_id == "openai/gpt-5"
    assert broken.reason.startswith("pricing.output")


# --- end to end -----------------------------------------------------------------------------


def test_first_sync_records_a_baseline_without_drift(run_sync, httpserver, db, instance):
    result = run_sync(serve_models(httpserver, snapshot_models(LATEST)))
    assert result.success
    assert metadata(result, "ai_models")["schema_drift_paths"] == 0
    assert not [line for line in run_logs(instance, result) if "Schema drift" in line]
    assert check(result, "ai_models_schema_drift").passed
    profile, drift = db.execute(
        "SELECT schema_profile, schema_drift FROM model_sync_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert drift is None
    # The baseline holds every path of the response, e.g. a video price's qualifier.
    assert profile["pricing.video_duration_pricing[].resolution"] == ["string"]
    assert profile["context_window"] == ["integer"]


def test_dates_served_in_milliseconds_keep_the_models_active_with_the_same_instant(
    run_sync, httpserver, db
):
    """The real unit change: deprecated_at in ms made the old code skip and deactivate three
    live models."""
    models = snapshot_models(LATEST)
    assert run_sync(serve_models(httpserver, models)).success
    deprecations = {
        "openai/gpt-4o": 1767225600000,  # ms: 2026-01-01
        "openai/gpt-4o-mini": 1767225600000000,  # µs
        "openai/gpt-3.5-turbo": "2026-01-01T00:00:00Z",
    }
    for model in models:
        if model["id"] in deprecations:
            model["deprecated_at"] = deprecations[model["id"]]
    result = run_sync(serve_models(httpserver, models))
    assert result.success
    meta = metadata(result, "ai_models")
    assert (meta["deactivated"], meta["failed"], meta["stale"]) == (0, 0, 0)
    assert db.execute("SELECT count(*) FROM ai_models WHERE NOT is_active").fetchone() == (0,)
    stored = dict(
        db.execute(
            "SELECT model_id, deprecated_at FROM ai_models WHERE deprecated_at IS NOT NULL"
        ).fetchall()
    )
    assert stored == {model_id: datetime(2026, 1, 1, tzinfo=UTC) for model_id in deprecations}
    # The new field is reported as drift, with its served types.
    drift = db.execute(
        "SELECT schema_drift FROM model_sync_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    assert drift["new_paths"] == {"deprecated_at": ["integer", "string"]}


def test_a_broken_model_among_hundreds_stays_active_with_its_last_valid_values(
    run_sync, httpserver, db, instance
):
    models = snapshot_models(LATEST)
    assert run_sync(serve_models(httpserver, models)).success
    before = catalog(db)
    drifted = copy.deepcopy(models)
    target = models_by_id(drifted)["anthropic/claude-sonnet-4"]
    target["pricing"]["input"] = {"usd": target["pricing"]["input"]}  # a price turned object
    # A model never seen before that is broken is skipped: nothing is invented.
    drifted.append({"id": "newco/never-valid", "pricing": {"input": "cheap"}})

    result = run_sync(serve_models(httpserver, drifted))
    assert result.success
    after = catalog(db)
    assert after == before  # nothing lost, nothing changed, the broken model included
    assert "newco/never-valid" not in after
    meta = metadata(result, "ai_models")
    assert (meta["total"], meta["stale"], meta["failed"], meta["deactivated"]) == (232, 1, 1, 0)
    assert "anthropic/claude-sonnet-4" in meta["stale_models"]
    since, reason = db.execute(
        "SELECT stale_since, stale_reason FROM ai_models WHERE model_id = %s",
        ("anthropic/claude-sonnet-4",),
    ).fetchone()
    assert since is not None and reason.startswith("pricing.input:")
    logs = run_logs(instance, result)
    assert any(line.startswith("Stale model anthropic/claude-sonnet-4") for line in logs)
    assert any("Skipping model newco/never-valid" in line for line in logs)
    stats = check(result, "ai_models_sync_stats")
    assert not stats.passed and stats.severity == AssetCheckSeverity.WARN
    assert stats.metadata["staleModels"].value == 1
    # The run records the stale model and why; the change feed says it went stale.
    stale_models, skipped = db.execute(
        "SELECT stale_models, skipped FROM model_sync_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert [s["model_id"] for s in stale_models] == ["anthropic/claude-sonnet-4"]
    assert [s["model_id"] for s in skipped] == ["newco/never-valid"]
    assert db.execute(
        "SELECT change_type, new_value FROM ai_model_changes WHERE model_id = %s "
        "AND sync_id = (SELECT max(id) FROM model_sync_runs)",
        ("anthropic/claude-sonnet-4",),
    ).fetchall() == [("stale", reason)]
    # The drift alarm names the path that changed type.
    assert check(result, "ai_models_schema_drift").severity == AssetCheckSeverity.WARN
    assert "type of pricing.input changed from string to object/string" in [
        line.removeprefix("Schema drift in vercel: ") for line in logs
    ]


def test_a_model_that_breaks_and_recovers_clears_its_mark_and_updates_as_usual(
    run_sync, httpserver, db
):
    models = snapshot_models(LATEST)
    assert run_sync(serve_models(httpserver, models)).success
    broken = copy.deepcopy(models)
    model = models_by_id(broken)["openai/gpt-5"]
    model["context_window"] = "400k"  # an optional field breaks…
    model["pricing"]["output"] = "0.000012"  # …while the price really changes (10 → 12)
    result = run_sync(serve_models(httpserver, broken))
    assert result.success
    row = db.execute(
        "SELECT context_window, cost_per_1m_output::text, stale_reason IS NOT NULL "
        "FROM ai_models WHERE model_id = 'openai/gpt-5'"
    ).fetchone()
    # The broken field keeps its last valid value; the valid one is updated.
    assert row == (models_by_id(models)["openai/gpt-5"]["context_window"], "12", True)

    recovered = copy.deepcopy(broken)
    models_by_id(recovered)["openai/gpt-5"]["context_window"] = 272000
    result = run_sync(serve_models(httpserver, recovered))
    assert result.success
    assert metadata(result, "ai_models")["stale"] == 0
    assert db.execute(
        "SELECT context_window, stale_since, stale_reason FROM ai_models "
        "WHERE model_id = 'openai/gpt-5'"
    ).fetchone() == (272000, None, None)
    assert db.execute(
        "SELECT change_type FROM ai_model_changes WHERE model_id = 'openai/gpt-5' "
        "AND sync_id = (SELECT max(id) FROM model_sync_runs) ORDER BY change_type"
    ).fetchall() == [("limits_changed",), ("recovered",)]
    assert check(result, "ai_models_sync_stats").passed


def test_broken_models_count_as_present_for_the_shrink_guard(run_sync, httpserver, db):
    """60 % of the catalog turns unreadable: nothing is deactivated, nothing refused."""
    models = snapshot_models(LATEST)
    assert run_sync(serve_models(httpserver, models)).success
    broken = copy.deepcopy(models)
    for model in broken[: len(broken) * 6 // 10]:
        model["pricing"] = "see website"
    result = run_sync(serve_models(httpserver, broken))
    assert result.success
    assert metadata(result, "ai_models")["stale"] == len(broken) * 6 // 10
    assert db.execute("SELECT count(*) FROM ai_models WHERE is_active").fetchone() == (232,)


def test_a_price_served_as_a_json_number_is_read_exactly_and_reported_as_drift(
    run_sync, httpserver, db
):
    models = snapshot_models(LATEST)
    assert run_sync(serve_models(httpserver, models)).success
    before = catalog(db)
    served = models_by_id(models)["openai/gpt-4o"]["pricing"]["input"]  # "0.0000025"
    text = json.dumps({"object": "list", "data": models})
    # The same price, now a JSON number in the body's text (no binary float on the way).
    text = text.replace(f'"input": "{served}"', f'"input": {served}', 1)
    result = run_sync(serve_text(httpserver, text))
    assert result.success
    after = catalog(db)
    assert after["openai/gpt-4o"][9] == before["openai/gpt-4o"][9] == "2.5"  # per 1M input
    drift = db.execute(
        "SELECT schema_drift FROM model_sync_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    assert {"path": "pricing.input", "old": ["string"], "new": ["number", "string"]} in drift[
        "type_changes"
    ]


def test_a_new_nested_price_kind_is_stored_queryable_and_reported_with_its_path(
    run_sync, httpserver, db
):
    models = snapshot_models(LATEST)
    assert run_sync(serve_models(httpserver, models)).success
    drifted = copy.deepcopy(models)
    model = models_by_id(drifted)["google/gemini-2.5-pro"]
    model["pricing"]["regional"] = {"eu": {"input": "0.0000014", "output": "0.000011"}}
    result = run_sync(serve_models(httpserver, drifted))
    assert result.success
    assert db.execute(
        "SELECT path, amount::text FROM ai_model_prices WHERE model_id = %s "
        "AND path LIKE 'regional.%%' ORDER BY path",
        ("google/gemini-2.5-pro",),
    ).fetchall() == [("regional.eu.input", "0.0000014"), ("regional.eu.output", "0.000011")]
    assert db.execute(
        "SELECT change_type, field, old_value, new_value FROM ai_model_changes "
        "WHERE model_id = %s AND sync_id = (SELECT max(id) FROM model_sync_runs) ORDER BY field",
        ("google/gemini-2.5-pro",),
    ).fetchall() == [
        ("price_changed", "pricing.regional.eu.input", None, "0.0000014"),
        ("price_changed", "pricing.regional.eu.output", None, "0.000011"),
    ]
    drift = db.execute(
        "SELECT schema_drift FROM model_sync_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    assert set(drift["new_paths"]) == {
        "pricing.regional",
        "pricing.regional.eu",
        "pricing.regional.eu.input",
        "pricing.regional.eu.output",
    }


def test_a_vanished_field_is_reported_and_no_model_is_lost(run_sync, httpserver, db, instance):
    models = snapshot_models(LATEST)
    assert run_sync(serve_models(httpserver, models)).success
    drifted = copy.deepcopy(models)
    for model in drifted:
        model.pop("released", None)
    result = run_sync(serve_models(httpserver, drifted))
    assert result.success
    assert db.execute("SELECT count(*) FROM ai_models WHERE is_active").fetchone() == (232,)
    logs = run_logs(instance, result)
    assert "Schema drift in vercel: vanished path released (was integer)" in logs
    meta = metadata(result, "ai_models")
    assert meta["schema_drift_paths"] == 1
    assert "released" in meta["schema_drift"] and "vanished" in meta["schema_drift"]


def test_the_profile_of_a_deeply_nested_value_stops_at_its_depth_limit():
    # 1,000 nested arrays: valid JSON, deeper than Python's default recursion limit.
    deep: list = []
    for _ in range(1_000):
        deep = [deep]
    profile = profile_models([{"id": "acme/deep", "nested": deep}])
    # "nested" is level 1; the walk goes MAX_DEPTH levels below the model and no further.
    expected_deepest = "nested" + "[]" * 32
    assert expected_deepest in profile
    assert "nested" + "[]" * 33 not in profile
    assert profile["nested"] == ["array"]
    assert len(profile) == 1 + 1 + 32  # id, nested, and one path per level walked


def test_profile_paths_hold_only_text_postgres_can_store():
    # The profile is stored with the run as jsonb: NUL and lone surrogates are written escaped.
    profile = profile_models([{"x\x00y": 1, "pricing": {"image\ud800": "0.01"}}])
    assert set(profile) == {"x\\x00y", "pricing", "pricing.image\\ud800"}
    for path in profile:
        path.encode("utf-8")
        assert "\x00" not in path
