"""The full pipeline against a real Postgres, replaying the recorded gateway snapshots.

Expected counts come from a plain diff of consecutive snapshot files, computed here from the
JSON alone, never from the code under test.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

import psycopg
import pytest
from dagster import AssetCheckSeverity, AssetKey

from model_sync_tests.conftest import run_logs
from model_sync_tests.expected import TOKEN_PRICES, served_base_price, shift_six
from model_sync_tests.snapshots import snapshot_bytes, snapshot_models, vercel_snapshots

GATEWAY_PATH = "/v1/models"
SOURCE = "vercel"
# Present 08-30 and 09-03, absent on 10-13, back 10-16 … 11-18, gone again in 2026-03-05.
RETURNING_MODEL = "google/gemini-2.5-flash-image-preview"


def serve(httpserver, body: bytes) -> str:
    httpserver.clear()
    httpserver.expect_request(GATEWAY_PATH).respond_with_data(body, content_type="application/json")
    return httpserver.url_for(GATEWAY_PATH)


def serve_models(httpserver, models: list) -> str:
    return serve(httpserver, json.dumps({"object": "list", "data": models}).encode())


def materialization_metadata(result, asset: str, source: str = SOURCE) -> dict:
    """The metadata of ``asset`` (``ai_models``, ``ai_models_frame``, ``gateway_models_raw``)
    of ``source`` as the run materialized it."""
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey([source, asset])
    ]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def check_evaluation(result, name: str):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def expected_changes(previous: dict[str, dict], current: dict[str, dict], seen: set[str]):
    """What a plain diff of two consecutive responses says, given every id seen before."""
    added = current.keys() - previous.keys()
    return {
        "created": len(added - seen),
        "reactivated": len(added & seen),
        "deactivated": len(previous.keys() - current.keys()),
        "updated": sum(1 for k in current.keys() & previous.keys() if current[k] != previous[k]),
        "unchanged": sum(1 for k in current.keys() & previous.keys() if current[k] == previous[k]),
    }


def stored_user_columns(db) -> dict[str, tuple[bool, int]]:
    return {
        row[0]: (row[1], row[2])
        for row in db.execute("SELECT model_id, is_recommended, priority FROM ai_models")
    }


def test_replay_of_every_snapshot_matches_a_plain_diff_and_keeps_user_settings(
    run_sync, httpserver, db
):
    """Each real snapshot in capture order: counts equal the diff; user columns survive.

    User settings are read back right after each sync, before anything writes them again, so
    a sync that touches them (on created, updated, unchanged, deactivated or reactivated
    rows) fails here.
    """
    previous: dict[str, dict] = {}
    seen: set[str] = set()
    user_settings: dict[str, tuple[bool, int]] = {}
    # The syncs that deactivated and reactivated RETURNING_MODEL, checked with its settings.
    returning_checked = {"deactivated": False, "reactivated": False}
    for step, (name, _captured) in enumerate(vercel_snapshots()):
        current = {model["id"]: model for model in snapshot_models(name)}
        result = run_sync(serve(httpserver, snapshot_bytes(name)))
        assert result.success, name

        # First, before anything else writes to the table: the settings made before this
        # sync are exactly as the user left them, and every other row has the defaults.
        stored_user = stored_user_columns(db)
        assert {k: stored_user[k] for k in user_settings} == user_settings, name
        assert {k: v for k, v in stored_user.items() if k not in user_settings} == {
            k: (False, 0) for k in stored_user.keys() - user_settings.keys()
        }, name
        if RETURNING_MODEL in user_settings:
            if RETURNING_MODEL in previous and RETURNING_MODEL not in current:
                returning_checked["deactivated"] = True
            if RETURNING_MODEL not in previous and RETURNING_MODEL in current:
                returning_checked["reactivated"] = True

        counts = materialization_metadata(result, "ai_models")
        expected = expected_changes(previous, current, seen)
        assert {key: counts[key] for key in expected} == expected, name
        assert counts["total"] == len(current)
        assert counts["failed"] == 0

        stored = dict(db.execute("SELECT model_id, is_active FROM ai_models").fetchall())
        assert stored.keys() == seen | current.keys(), name
        assert {k for k, active in stored.items() if active} == current.keys(), name
        assert db.execute(
            "SELECT count(*) FROM ai_models WHERE is_active = (deactivated_at IS NOT NULL)"
        ).fetchone() == (0,)

        # Users edit their own columns between syncs, including on a model that will vanish
        # and come back; no sync may touch them.
        for offset, model_id in enumerate(sorted(current)[step::7]):
            user_settings[model_id] = (offset % 2 == 0, step * 10 + offset + 1)
        if RETURNING_MODEL in current:
            user_settings[RETURNING_MODEL] = (True, 999)
        for model_id, (recommended, priority) in user_settings.items():
            db.execute(
                "UPDATE ai_models SET is_recommended = %s, priority = %s WHERE model_id = %s",
                (recommended, priority, model_id),
            )
        previous, seen = current, seen | current.keys()

    # The checks above covered real settings on rows of every kind, not an empty dict.
    assert len(user_settings) > 100
    assert {recommended for recommended, _ in user_settings.values()} == {True, False}
    assert returning_checked == {"deactivated": True, "reactivated": True}
    runs = db.execute(
        "SELECT count(*), count(DISTINCT run_id) FROM model_sync_runs WHERE status = 'success'"
    ).fetchone()
    assert runs == (len(vercel_snapshots()), len(vercel_snapshots()))


def test_reactivated_model_is_active_again_and_loses_its_deactivation_time(
    run_sync, httpserver, db
):
    models = snapshot_models("models-2025-11-18.json")
    without = [m for m in models if m["id"] != RETURNING_MODEL]
    assert len(without) == len(models) - 1
    run_sync(serve_models(httpserver, models))
    result = run_sync(serve_models(httpserver, without))
    assert materialization_metadata(result, "ai_models")["deactivated"] == 1
    assert db.execute(
        "SELECT is_active, deactivated_at IS NOT NULL FROM ai_models WHERE model_id = %s",
        (RETURNING_MODEL,),
    ).fetchone() == (False, True)

    result = run_sync(serve_models(httpserver, models))
    meta = materialization_metadata(result, "ai_models")
    assert (meta["reactivated"], meta["created"], meta["updated"]) == (1, 0, 0)
    assert db.execute(
        "SELECT is_active, deactivated_at FROM ai_models WHERE model_id = %s", (RETURNING_MODEL,)
    ).fetchone() == (True, None)


def last_run_row(db) -> tuple:
    return db.execute(
        "SELECT status, unchanged_body, total, created, updated, unchanged, deactivated, "
        "reactivated, failed FROM model_sync_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()


def test_second_sync_of_the_same_response_writes_nothing(run_sync, httpserver, db):
    """0 created, 0 updated, and not one row version rewritten (xmin unchanged) — on both paths.

    The full path: the same 232 models served again with other JSON whitespace (other bytes,
    same content), so the body is decoded, diffed and found unchanged. Then the very same
    bytes once more: the verified-unchanged path (``unchanged_body``), which writes nothing
    but its run row and reports the counts a full diff would.
    """
    body = snapshot_bytes("models-2026-03-05.json")
    assert run_sync(serve(httpserver, body)).success
    catalog = "SELECT model_id, xmin::text FROM ai_models"
    before = dict(db.execute(catalog).fetchall())
    assert len(before) == 232

    respaced = body + b"\n  \n"
    assert respaced != body and json.loads(respaced) == json.loads(body)
    result = run_sync(serve(httpserver, respaced))
    assert result.success
    meta = materialization_metadata(result, "ai_models")
    assert meta["unchanged_body"] is False
    assert (meta["created"], meta["updated"], meta["deactivated"]) == (0, 0, 0)
    assert meta["unchanged"] == meta["total"] == 232
    assert last_run_row(db) == ("success", False, 232, 0, 0, 232, 0, 0, 0)
    assert dict(db.execute(catalog).fetchall()) == before

    result = run_sync(serve(httpserver, respaced))
    assert result.success
    meta = materialization_metadata(result, "ai_models")
    assert meta["unchanged_body"] is True
    assert (meta["created"], meta["updated"], meta["deactivated"]) == (0, 0, 0)
    assert meta["unchanged"] == meta["total"] == 232
    assert last_run_row(db) == ("success", True, 232, 0, 0, 232, 0, 0, 0)
    assert dict(db.execute(catalog).fetchall()) == before


def test_stored_prices_are_exact_numerics_scaled_per_million(run_sync, httpserver, db):
    """Every stored per-1M price is the JSON string with its point moved six places, digit for
    digit: compared as Postgres prints the NUMERIC, so ``0.3000000`` cannot pass for ``0.3``."""
    name = "models-2026-03-05.json"
    assert run_sync(serve(httpserver, snapshot_bytes(name))).success
    columns = [column for _, _, column in TOKEN_PRICES]
    rows = {
        row[0]: row[1:]
        for row in db.execute(
            "SELECT model_id, "
            + ", ".join(f"{column}::text" for column in columns)
            + ", web_search_cost::text, pg_typeof(cost_per_1m_input)::text FROM ai_models"
        )
    }
    checked = 0
    for model in snapshot_models(name):
        pricing = model.get("pricing", {})
        *stored, web_search, column_type = rows[model["id"]]
        assert column_type == "numeric"
        for (flat_key, tier_key, column), text in zip(TOKEN_PRICES, stored, strict=True):
            served = served_base_price(pricing, flat_key, tier_key)
            expected = None if served is None else shift_six(served)
            assert text == expected, (model["id"], column, served)
            checked += served is not None
        # web_search is per search: stored as served, not scaled.
        assert web_search == pricing.get("web_search"), model["id"]
    assert checked > 400
    # "0.00000012" per token is exactly 0.12 per million, written without trailing zeros.
    cheap = db.execute(
        "SELECT cost_per_1m_input::text FROM ai_models WHERE raw->'pricing'->>'input' = %s",
        ("0.00000012",),
    ).fetchall()
    assert cheap and {row[0] for row in cheap} == {"0.12"}


def test_tiers_pricing_and_raw_model_are_kept_whole(run_sync, httpserver, db):
    name = "models-2026-03-05.json"
    assert run_sync(serve(httpserver, snapshot_bytes(name))).success
    for model in snapshot_models(name):
        raw, pricing, input_tiers = db.execute(
            "SELECT raw, pricing, input_tiers FROM ai_models WHERE model_id = %s", (model["id"],)
        ).fetchone()
        assert raw == model
        assert pricing == model.get("pricing")
        served = model.get("pricing", {}).get("input_tiers")
        if served is None:
            assert input_tiers is None
        else:
            assert [Decimal(t["cost"]) for t in input_tiers] == [Decimal(t["cost"]) for t in served]
            assert [t.get("max") for t in input_tiers] == [t.get("max") for t in served]
            assert [t["min"] for t in input_tiers] == [t.get("min", 0) for t in served]


def test_values_at_their_limits_are_stored_exactly(run_sync, httpserver, db):
    """A 1000-byte id, BIGINT-maximal counts and the last storable second all fit the catalog.

    The last storable second is served as ISO-8601 text. Unix numbers past 10^11 are read as
    milliseconds (changed on purpose: "served models are never lost"), so 253402300799 —
    once the last second of 9999 in unix seconds — is now 253402300.799 s after the epoch.
    """
    model_id = "a/" + "é" * 499  # 1000 bytes of UTF-8
    template = snapshot_models("models-2025-11-18.json")[0]
    model = {
        **template,
        "id": model_id,
        "context_window": 9_223_372_036_854_775_807,
        "max_tokens": 9_223_372_036_854_775_807,
        "released": "9999-12-31T23:59:59Z",
        "deprecated_at": 253_402_300_799,
        "created": 0,
    }
    result = run_sync(serve_models(httpserver, [model]))
    assert result.success
    meta = materialization_metadata(result, "ai_models")
    assert (meta["created"], meta["failed"], meta["stale"]) == (1, 0, 0)
    assert db.execute(
        "SELECT octet_length(model_id), context_window::text, max_output_tokens::text, "
        "(released_at AT TIME ZONE 'UTC')::text, (deprecated_at AT TIME ZONE 'UTC')::text, "
        "(gateway_created_at AT TIME ZONE 'UTC')::text, stale_reason "
        "FROM ai_models WHERE model_id = %s",
        (model_id,),
    ).fetchone() == (
        1000,
        "9223372036854775807",
        "9223372036854775807",
        "9999-12-31 23:59:59",
        "1978-01-11 21:31:40.799",
        "1970-01-01 00:00:00",
        None,
    )


def test_invalid_models_are_skipped_counted_and_recorded(run_sync, httpserver, db, instance):
    models = snapshot_models("models-2025-11-18.json")
    broken = [
        {**models[0], "id": "broken/negative", "pricing": {"input": "-1", "output": "1"}},
        {**models[1], "id": "broken/words", "pricing": {"input": "cheap"}},
        {"name": "no id at all"},
        dict(models[2]),  # a duplicate id: the first occurrence wins
    ]
    result = run_sync(serve_models(httpserver, models + broken))
    assert result.success
    meta = materialization_metadata(result, "ai_models")
    assert (meta["total"], meta["created"], meta["failed"]) == (144, 144, 4)
    frame_meta = materialization_metadata(result, "ai_models_frame")
    assert "broken/negative" in frame_meta["skipped_models"]
    assert "pricing.input" in frame_meta["skipped_models"]
    logs = run_logs(instance, result)
    assert any("Skipping model broken/words" in line for line in logs)
    assert db.execute(
        "SELECT count(*) FROM ai_models WHERE model_id LIKE 'broken/%'"
    ).fetchone() == (0,)
    failed, skipped = db.execute(
        "SELECT failed, skipped FROM model_sync_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert failed == 4
    assert {entry["model_id"] for entry in skipped} >= {"broken/negative", "broken/words"}


def broken_price(model: dict) -> dict:
    """``model`` with an input price that is not a number: its essential pricing is broken."""
    return {**model, "pricing": {**model.get("pricing", {}), "input": "cheap"}}


def test_a_known_model_that_breaks_stays_active_and_stale_and_is_not_counted_failed(
    run_sync, httpserver, db
):
    """Served models are never lost (changed on purpose): a model the catalog holds whose price
    cannot be read keeps its stored row, active and marked stale; one whose optional field
    breaks keeps that column's stored value. Neither is deactivated nor counted as failed;
    ``failed`` counts only the skipped entries and the broken models the catalog never held.
    """
    models = snapshot_models("models-2025-11-18.json")
    assert run_sync(serve_models(httpserver, models)).success
    price_broken, limit_broken = models[0]["id"], models[1]["id"]
    stored = "SELECT cost_per_1m_input::text, context_window FROM ai_models WHERE model_id = %s"
    price_before = db.execute(stored, (price_broken,)).fetchone()
    limit_before = db.execute(stored, (limit_broken,)).fetchone()
    assert limit_before[1] == models[1]["context_window"]

    served = [
        broken_price(models[0]),
        {**models[1], "context_window": "huge"},
        *models[2:],
        broken_price({**models[2], "id": "broken/never-held"}),
        {"name": "no id at all"},
    ]
    result = run_sync(serve_models(httpserver, served))
    assert result.success
    meta = materialization_metadata(result, "ai_models")
    # 144 held models served (two of them stale), one never-held broken model, one entry
    # without an id.
    assert (meta["total"], meta["created"], meta["deactivated"]) == (144, 0, 0)
    assert (meta["failed"], meta["stale"]) == (2, 2)
    assert db.execute("SELECT count(*) FROM ai_models WHERE is_active").fetchone() == (144,)
    assert db.execute(stored, (price_broken,)).fetchone() == price_before
    assert db.execute(stored, (limit_broken,)).fetchone() == limit_before
    marks = dict(
        db.execute(
            "SELECT model_id, stale_reason FROM ai_models "
            "WHERE stale_since IS NOT NULL AND is_active"
        ).fetchall()
    )
    assert marks.keys() == {price_broken, limit_broken}
    assert "pricing.input" in marks[price_broken]
    assert "context_window" in marks[limit_broken]
    assert db.execute(
        "SELECT count(*) FROM ai_models WHERE model_id = 'broken/never-held'"
    ).fetchone() == (0,)
    failed, skipped, stale = db.execute(
        "SELECT failed, skipped, stale FROM model_sync_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert (failed, stale) == (2, 2)
    assert sorted(str(entry["model_id"]) for entry in skipped) == ["None", "broken/never-held"]
    evaluation = check_evaluation(result, "ai_models_sync_stats")
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.WARN


def test_log_lines_and_metadata_match_the_old_module(run_sync, httpserver, instance):
    models = snapshot_models("models-2025-11-18.json")
    url = serve_models(httpserver, models)
    run_sync(url)
    started = time.monotonic()
    result = run_sync(serve_models(httpserver, models[:-3]))
    elapsed_ms = (time.monotonic() - started) * 1000
    logs = run_logs(instance, result)
    assert f"Fetching models from: {url}" in logs
    assert "Successfully fetched 141 models from Vercel AI Gateway" in logs
    assert "Deactivated 3 models that are no longer available" in logs
    meta = materialization_metadata(result, "ai_models")
    # Milliseconds of this run: more than zero (a sync of 141 models takes several), within the
    # wall time of the whole job, and the number the log line shows.
    assert isinstance(meta["duration_ms"], int)
    assert 0 < meta["duration_ms"] <= elapsed_ms
    assert f"AI Models sync completed successfully in {meta['duration_ms']} ms" in logs
    assert any(line.startswith("Stats: total=141, created=0, updated=0,") for line in logs)
    assert "Database Stats: 141 active models, 3 inactive models" in logs
    assert meta["dagster/row_count"] == 144
    raw_meta = materialization_metadata(result, "gateway_models_raw")
    assert raw_meta["model_count"] == 141
    assert len(raw_meta["sha256"]) == 64


def test_each_created_and_updated_model_is_logged_in_one_debug_event_per_kind(
    run_sync, httpserver, instance
):
    """The old module's per-model debug lines, without one stored Dagster event per model
    (that cost ~10 ms each: hours for a first load of 100,000 models)."""
    models = snapshot_models("models-2025-11-18.json")
    first = run_sync(serve_models(httpserver, models))
    created = [line for line in run_logs(instance, first) if line.startswith("Created model: ")]
    assert len(created) == 1
    assert created[0].splitlines() == [
        f"Created model: {m['id']}" for m in sorted(models, key=lambda m: m["id"])
    ]

    repriced = json.loads(json.dumps(models))
    repriced[0]["pricing"]["input"] = str(Decimal(repriced[0]["pricing"]["input"]) * 2)
    second = run_sync(serve_models(httpserver, repriced))
    updated = [line for line in run_logs(instance, second) if line.startswith("Updated model: ")]
    assert updated == [f"Updated model: {repriced[0]['id']}"]
    assert not any(line.startswith("Created model: ") for line in run_logs(instance, second))


@pytest.mark.parametrize("count", [1000, 1001])
def test_model_log_lines_are_capped_with_a_pointer_to_the_change_table(
    run_sync, httpserver, instance, count
):
    """Up to 1000 "Created model" lines; past that, one line pointing at ai_model_changes."""
    from model_sync.reporting import MODEL_LOG_LINES_CAP

    assert MODEL_LOG_LINES_CAP == 1000
    template = snapshot_models("models-2025-11-18.json")[0]
    models = [{**template, "id": f"acme/model-{index:05d}"} for index in range(count)]
    result = run_sync(serve_models(httpserver, models))
    [message] = [line for line in run_logs(instance, result) if line.startswith("Created model: ")]
    lines = message.splitlines()
    assert lines[:1000] == [f"Created model: acme/model-{index:05d}" for index in range(1000)]
    if count == 1000:
        assert len(lines) == 1000
    else:
        assert len(lines) == 1001
        assert lines[-1].startswith(
            f"… and {count - 1000} more (SELECT * FROM ai_model_changes WHERE sync_id = "
        )


@pytest.mark.parametrize("count", [50, 51])
def test_metadata_lists_show_at_most_50_entries(run_sync, httpserver, count):
    """The UI's lists (changes, change report, skipped models) stop at 50; the count stays."""
    from model_sync.reporting import METADATA_LIST_CAP

    assert METADATA_LIST_CAP == 50
    template = snapshot_models("models-2025-11-18.json")[0]
    good = [{**template, "id": f"acme/model-{index:03d}"} for index in range(count)]
    broken = [
        broken_price({**template, "id": f"broken/model-{index:03d}"}) for index in range(count)
    ]
    result = run_sync(serve_models(httpserver, good + broken))
    assert result.success
    meta = materialization_metadata(result, "ai_models")

    created = meta["changes"].split("\n\n**Updated**")[0]
    assert created.startswith(f"**Created** ({count})\n\n")
    listed = [line for line in created.splitlines() if line.startswith("- `")]
    assert listed == [f"- `acme/model-{index:03d}`" for index in range(50)]
    report_rows = [
        line for line in meta["change_report"].splitlines() if line.startswith("| acme/")
    ]
    assert len(report_rows) == 50
    skipped_rows = [
        line
        for line in materialization_metadata(result, "ai_models_frame")[
            "skipped_models"
        ].splitlines()
        if "broken/model-" in line
    ]
    assert len(skipped_rows) == 50
    if count == 50:
        assert "… and" not in created
        assert "… and" not in meta["change_report"]
    else:
        assert created.endswith("\n- … and 1 more")
        assert (
            "… and 1 more (SELECT * FROM ai_model_changes WHERE sync_id = "
            in (meta["change_report"])
        )


@pytest.mark.parametrize(
    ("value", "shown"),
    [("x" * 60, "x" * 60), ("x" * 61, "x" * 57 + "…"), (None, ""), ([1, 2], "[1, 2]")],
    ids=["60-chars", "61-chars", "none", "json"],
)
def test_change_report_cells_are_cut_after_60_characters(value, shown):
    from model_sync.reporting import _cell

    assert _cell(value) == shown


@pytest.mark.parametrize(("share", "succeeds"), [(None, False), (0.6, False), (0.7, True)], ids=str)
def test_deactivating_too_many_models_is_refused_unless_the_limit_allows_it(
    run_sync, httpserver, db, share, succeeds
):
    """Dropping 2/3 of the catalog looks like a broken upstream, not a real change."""
    models = snapshot_models("models-2025-11-18.json")
    assert run_sync(serve_models(httpserver, models)).success
    before = db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall()
    overrides = {} if share is None else {"max_deactivation_share": share}
    result = run_sync(serve_models(httpserver, models[: len(models) // 3]), **overrides)
    assert result.success is succeeds
    after = db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall()
    if succeeds:
        assert db.execute("SELECT count(*) FROM ai_models WHERE is_active").fetchone() == (48,)
    else:
        assert after == before
        [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        message = failure.step_failure_data.user_failure_data.description
        assert "refusing to deactivate 96 of 144" in message
        assert db.execute(
            "SELECT status, error LIKE '%%refusing%%' FROM model_sync_runs ORDER BY id DESC LIMIT 1"
        ).fetchone() == ("failed", True)


def test_deactivating_exactly_the_allowed_share_passes_and_one_model_more_is_refused(
    run_sync, httpserver, db
):
    """MODEL_SYNC_MAX_DEACTIVATION_SHARE (0.5) refuses *more than* half: of 144 active models,
    73 gone is refused with the catalog unchanged, exactly 72 gone is a normal sync."""
    models = snapshot_models("models-2025-11-18.json")
    assert len(models) == 144
    assert run_sync(serve_models(httpserver, models)).success
    before = db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall()

    refused = run_sync(serve_models(httpserver, models[:71]))
    assert not refused.success
    [failure] = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
    assert (
        "refusing to deactivate 73 of 144"
        in failure.step_failure_data.user_failure_data.description
    )
    assert db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall() == before

    accepted = run_sync(serve_models(httpserver, models[:72]))
    assert accepted.success
    assert materialization_metadata(accepted, "ai_models")["deactivated"] == 72
    assert db.execute("SELECT count(*) FROM ai_models WHERE is_active").fetchone() == (72,)


def test_stats_check_reports_counts_and_passes_on_a_healthy_catalog(run_sync, httpserver):
    models = snapshot_models("models-2025-11-18.json")
    run_sync(serve_models(httpserver, models))
    result = run_sync(serve_models(httpserver, models[:-2]))
    evaluation = check_evaluation(result, "ai_models_sync_stats")
    assert evaluation.passed
    meta = {key: value.value for key, value in evaluation.metadata.items()}
    assert (meta["totalModels"], meta["activeModels"], meta["inactiveModels"]) == (144, 142, 2)
    assert meta["lastSyncDate"].endswith("Z")


def test_stats_check_fails_when_too_many_models_failed(run_sync, httpserver):
    models = snapshot_models("models-2025-11-18.json")
    broken = [broken_price(m) for m in models[:20]]
    result = run_sync(serve_models(httpserver, broken + models[20:]))
    # The catalog still took the 124 good models; the check (non-blocking) turns red.
    assert result.success
    assert materialization_metadata(result, "ai_models")["created"] == 124
    evaluation = check_evaluation(result, "ai_models_sync_stats")
    assert not evaluation.passed
    assert "skipped 20 of 144" in evaluation.description


@pytest.mark.parametrize(("broken", "passes"), [(14, True), (15, False)])
def test_stats_check_allows_exactly_the_failed_share(run_sync, httpserver, broken, passes):
    """MODEL_SYNC_MAX_FAILED_SHARE (0.1) fails on *more than* a tenth: of 140 served models,
    14 failed (new models whose price cannot be read) is exactly 10 % and passes; 15 fails."""
    models = snapshot_models("models-2025-11-18.json")[:140]
    served = [broken_price(m) for m in models[:broken]] + models[broken:]
    result = run_sync(serve_models(httpserver, served))
    assert result.success
    assert materialization_metadata(result, "ai_models")["failed"] == broken
    evaluation = check_evaluation(result, "ai_models_sync_stats")
    assert evaluation.passed is passes
    if not passes:
        assert "skipped 15 of 140" in evaluation.description


def test_stats_check_fails_when_no_model_is_active(database_url, db, tmp_path):
    """An empty (or fully deactivated) catalog is an outage for every reader."""
    from dagster import build_asset_check_context

    from model_sync.checks import STATS_CHECK, source_checks
    from model_sync.resources import CatalogDatabase

    [stats_check] = [c for c in source_checks(SOURCE) if c.check_key.name == STATS_CHECK]
    catalog = CatalogDatabase(
        database_url=database_url, data_dir=str(tmp_path), connect_timeout_seconds=5
    )
    result = stats_check(build_asset_check_context(), catalog=catalog)
    assert not result.passed
    assert "no active models" in result.description
    assert result.metadata["lastSyncDate"].value == "never"


def test_every_check_run_before_the_first_sync_fails_plainly(empty_database_url, tmp_path):
    """A user who opens the asset-check page of a fresh deployment and executes a check: the
    checks only read, so the schema does not exist yet — each says so instead of a missing-table
    error, and nothing is created."""
    from dagster import AssetCheckSeverity, build_asset_check_context

    from model_sync.checks import source_checks
    from model_sync.resources import CatalogDatabase, ChangeFeed
    from model_sync.settings import Settings, WebhookSettings

    catalog = CatalogDatabase(
        database_url=empty_database_url, data_dir=str(tmp_path), connect_timeout_seconds=5
    )
    feed = ChangeFeed.from_settings(
        Settings(
            webhooks=WebhookSettings(
                urls=["http://127.0.0.1:9/hook"], secret="a-webhook-signing-secret"
            )
        )
    )
    severities = {}
    for check in source_checks(SOURCE, compared=True):
        resources = {"catalog": catalog}
        if "change_feed" in check.required_resource_keys:
            resources["change_feed"] = feed
        result = check(build_asset_check_context(), **resources)
        assert not result.passed
        assert result.description == (
            "the catalog has not been synced yet: materialize the source's assets"
        )
        severities[check.check_key.name] = result.severity
    assert severities == {
        "ai_models_sync_stats": AssetCheckSeverity.ERROR,
        "ai_models_schema_drift": AssetCheckSeverity.WARN,
        "ai_models_webhook_deliveries": AssetCheckSeverity.ERROR,
        "ai_models_price_agreement": AssetCheckSeverity.WARN,
    }
    with psycopg.connect(empty_database_url) as db:
        assert db.execute("SELECT to_regclass('model_sync_runs')").fetchone() == (None,)
