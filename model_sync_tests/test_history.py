"""Price and capability history, the change report and the anomaly guard.

Expected versions come from a plain diff of consecutive snapshot files (the raw JSON of the
attributes we track), computed here without the code under test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from model_sync.backfill import backfill, saved_responses
from model_sync.sources import get_source
from model_sync.store.sync import SyncRefused, SyncRequest, sync_catalog
from model_sync.transform import normalize_models
from model_sync_tests.conftest import configure, run_cli
from model_sync_tests.snapshots import VERCEL_DIR, snapshot_models, vercel_snapshots
from model_sync_tests.test_sync import check_evaluation, materialization_metadata, serve_models

BASE = "models-2025-11-18.json"
VERCEL = get_source("vercel")
PRICE_COLUMN_OF = {
    "input": "cost_per_1m_input",
    "output": "cost_per_1m_output",
    "input_cache_read": "cost_per_1m_cache_read",
    "input_cache_write": "cost_per_1m_cache_write",
}


def tracked(model: dict) -> str:
    """The raw attributes a version tracks, canonically serialized."""
    return json.dumps(
        {
            "pricing": model.get("pricing"),
            "context_window": model.get("context_window"),
            "max_tokens": model.get("max_tokens"),
            "tags": model.get("tags") or [],
            "type": model.get("type"),
            "deprecated_at": model.get("deprecated_at"),
        },
        sort_keys=True,
    )


def expected_versions() -> dict[str, list[tuple[datetime, bool, str]]]:
    """Per model: (valid_from, is_active, tracked state) for every state change."""
    versions: dict[str, list[tuple[datetime, bool, str]]] = {}
    for name, captured in vercel_snapshots():
        current = {m["id"]: m for m in snapshot_models(name)}
        for model_id, model in current.items():
            history = versions.setdefault(model_id, [])
            state = (True, tracked(model))
            if not history or history[-1][1:] != state:
                history.append((captured, *state))
        for model_id, history in versions.items():
            if model_id not in current and history[-1][1]:
                history.append((captured, False, history[-1][2]))
    return versions


def stored_versions(db) -> dict[str, list[tuple[datetime, bool, str]]]:
    rows = db.execute(
        "SELECT v.model_id, v.valid_from, v.valid_to, v.is_active, m.raw, v.pricing "
        "FROM ai_model_versions v JOIN ai_models m USING (source, model_id) "
        "ORDER BY v.model_id, v.valid_from"
    ).fetchall()
    versions: dict[str, list] = {}
    for model_id, valid_from, _valid_to, active, _raw, pricing in rows:
        versions.setdefault(model_id, []).append((valid_from, active, pricing))
    return versions


@pytest.fixture
def backfilled(engine, db):
    backfill(engine, VERCEL_DIR, source=VERCEL, report=lambda line: None)
    return db


def test_backfill_of_every_snapshot_opens_exactly_the_versions_a_plain_diff_implies(backfilled):
    db = backfilled
    expected = expected_versions()
    stored = stored_versions(db)
    assert stored.keys() == expected.keys()
    for model_id, history in expected.items():
        got = stored[model_id]
        assert [(at, active) for at, active, _ in got] == [
            (at, active) for at, active, _ in history
        ], model_id
        # The stored pricing of each version is the served pricing of that period.
        assert [pricing for _, _, pricing in got] == [
            json.loads(state)["pricing"] for _, _, state in history
        ], model_id
    assert (
        sum(len(h) for h in expected.values())
        == db.execute("SELECT count(*) FROM ai_model_versions").fetchone()[0]
    )
    # Periods tile: each version ends where the next begins; exactly one open version each.
    assert db.execute(
        "SELECT count(*) FROM ai_model_versions v WHERE valid_to IS DISTINCT FROM ("
        " SELECT min(n.valid_from) FROM ai_model_versions n WHERE n.source = v.source"
        " AND n.model_id = v.model_id AND n.valid_from > v.valid_from)"
    ).fetchone() == (0,)
    assert db.execute(
        "SELECT count(DISTINCT model_id) = count(*) FROM ai_model_versions WHERE valid_to IS NULL"
    ).fetchone() == (True,)


def test_backfill_twice_and_a_repeated_snapshot_add_nothing(
    engine, backfilled, run_sync, httpserver
):
    """A second backfill skips every file older than the history; the newest file, dated
    exactly at it, is the very body the last sync read, so it takes the verified-unchanged
    path (one run row with ``unchanged_body``, nothing else written). The newest snapshot's
    models served again as other bytes (compact JSON) then take the full path: diffed, and
    found to open no version and record no change."""
    db = backfilled
    counts = (
        "SELECT (SELECT count(*) FROM ai_model_versions), (SELECT count(*) FROM ai_model_changes)"
    )
    before = db.execute(counts).fetchone()
    lines: list[str] = []
    [last_run] = db.execute("SELECT max(id) FROM model_sync_runs").fetchone()
    backfill(engine, VERCEL_DIR, source=VERCEL, report=lines.append)
    assert db.execute(counts).fetchone() == before
    # Files *older* than the newest version are skipped; the newest, dated exactly at it, is
    # loaded again (and changes nothing).
    *older, (newest, _) = vercel_snapshots()
    assert [line.split(":")[0] for line in lines if line.startswith("skip ")] == [
        f"skip {name}" for name, _ in older
    ]
    [loaded] = [line for line in lines if not line.startswith("skip ")]
    assert loaded.startswith(f"{newest} @ ")
    assert loaded.endswith(
        "created=0 updated=0 deactivated=0 reactivated=0 failed=0 stale=0 versions_opened=0 "
        "(unchanged body)"
    )
    assert db.execute(
        "SELECT count(*), bool_and(unchanged_body) FROM model_sync_runs WHERE id > %s",
        (last_run,),
    ).fetchone() == (1, True)
    last = vercel_snapshots()[-1][0]
    result = run_sync(serve_models(httpserver, snapshot_models(last)))
    assert result.success
    meta = materialization_metadata(result, "ai_models")
    assert meta["unchanged_body"] is False
    assert (meta["versions_opened"], meta["created"], meta["updated"]) == (0, 0, 0)
    assert meta["unchanged"] == len(snapshot_models(last))
    assert db.execute(counts).fetchone() == before


def test_a_sync_dated_at_the_newest_version_is_allowed_and_one_microsecond_earlier_refused(
    engine, db
):
    """History is append-only: a response dated before the newest recorded version is refused
    with nothing written; one dated exactly at it is not "before" and is loaded."""
    models = snapshot_models(BASE)
    newest = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def sync(served: list[dict], effective_at: datetime):
        return sync_catalog(
            engine,
            SyncRequest(
                source=VERCEL,
                models=normalize_models(served, VERCEL),
                run_id=f"at-{effective_at.isoformat()}",
                effective_at=effective_at,
            ),
            started_at=datetime.now(UTC),
        )

    sync(models, newest)
    changed = json.loads(json.dumps(models))
    gpt = by_id(changed, "openai/gpt-4o")
    gpt["pricing"]["input"] = "0.000003"  # 2.5 → 3 per 1M
    tables = (
        "SELECT (SELECT count(*) FROM ai_model_versions), (SELECT count(*) FROM model_sync_runs)"
    )
    before = (
        db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall(),
        db.execute(tables).fetchone(),
    )

    with pytest.raises(SyncRefused, match="history is append-only"):
        sync(changed, newest - timedelta(microseconds=1))
    after = (
        db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall(),
        db.execute(tables).fetchone(),
    )
    assert after == before

    result = sync(changed, newest)
    assert result.counts.updated == 1
    assert db.execute(
        "SELECT cost_per_1m_input::text FROM ai_model_price_at('openai/gpt-4o', %s)", (newest,)
    ).fetchone() == ("3",)
    assert db.execute(
        "SELECT cost_per_1m_input::text FROM ai_models WHERE model_id = 'openai/gpt-4o'"
    ).fetchone() == ("3",)


def first_input_price_change(snapshots) -> tuple[str, datetime, str, str]:
    """The first real input price change between consecutive snapshot files."""
    for (older, _), (newer, changed_at) in zip(snapshots, snapshots[1:], strict=False):
        old = {m["id"]: m for m in snapshot_models(older)}
        for model in snapshot_models(newer):
            before = old.get(model["id"], {}).get("pricing", {}).get("input")
            after = model.get("pricing", {}).get("input")
            if before and after and Decimal(before) != Decimal(after):
                return model["id"], changed_at, before, after
    raise AssertionError("the fixtures hold no input price change")


def test_price_at_a_time_and_price_changes_of_a_provider_since_a_date(backfilled):
    """The two documented history queries, checked against the snapshot files."""
    db = backfilled
    snapshots = vercel_snapshots()
    model_id, changed_at, before, after = first_input_price_change(snapshots)
    price_at = "SELECT cost_per_1m_input FROM ai_model_price_at(%s, %s)"
    just_before = changed_at - timedelta(seconds=1)
    assert db.execute(price_at, (model_id, just_before)).fetchone() == (
        Decimal(before) * 1_000_000,
    )
    assert db.execute(price_at, (model_id, changed_at)).fetchone() == (Decimal(after) * 1_000_000,)
    assert db.execute(price_at, (model_id, datetime(2020, 1, 1, tzinfo=UTC))).fetchone() is None

    provider = model_id.split("/")[0]
    rows = db.execute(
        "SELECT model_id, changed_at, field, old_value, new_value FROM ai_model_price_changes "
        "WHERE provider = %s AND changed_at >= %s ORDER BY changed_at, model_id, field",
        (provider, changed_at),
    ).fetchall()
    assert (
        model_id,
        changed_at,
        "cost_per_1m_input",
        Decimal(before) * 10**6,
        Decimal(after) * 10**6,
    ) in rows
    # Every row is a real difference between consecutive files of that provider.
    expected = set()
    for (older, _), (newer, at) in zip(snapshots, snapshots[1:], strict=False):
        if at < changed_at:
            continue
        old = {m["id"]: m for m in snapshot_models(older)}
        for m in snapshot_models(newer):
            if m["id"].split("/")[0] != provider or m["id"] not in old:
                continue
            for key, column in PRICE_COLUMN_OF.items():
                a = old[m["id"]].get("pricing", {}).get(key)
                b = m.get("pricing", {}).get(key)
                if (a is None) != (b is None) or (a is not None and Decimal(a) != Decimal(b)):
                    expected.add((m["id"], at, column))
    got = {(r[0], r[1], r[2]) for r in rows if r[2] != "web_search_cost"}
    assert (sorted(got - expected), sorted(expected - got)) == ([], [])


def seeded(run_sync, httpserver):
    models = snapshot_models(BASE)
    assert run_sync(serve_models(httpserver, models)).success
    return models


def by_id(models, model_id):
    return next(m for m in models if m["id"] == model_id)


def test_each_kind_of_change_is_reported_with_field_old_new_and_relative_change(
    run_sync, httpserver, db
):
    models = seeded(run_sync, httpserver)
    changed = json.loads(json.dumps(models))
    gpt = by_id(changed, "openai/gpt-4o")
    gpt["pricing"]["input"] = str(Decimal(gpt["pricing"]["input"]) * 2)  # 2×: no warning
    gpt["context_window"] = 256000
    gpt["tags"] = [*gpt.get("tags", []), "reasoning"]
    gpt["deprecated_at"] = 1790000000
    claude = by_id(changed, "anthropic/claude-sonnet-4")
    claude["pricing"]["input_tiers"] = [{"cost": claude["pricing"]["input"], "min": 0}]
    gone = changed.pop(0)["id"]
    changed.append({**models[1], "id": "newco/model-1"})
    result = run_sync(serve_models(httpserver, changed))
    assert result.success
    rows = db.execute(
        "SELECT model_id, change_type, field, old_value, new_value, relative_change "
        "FROM ai_model_changes WHERE sync_id = (SELECT max(id) FROM model_sync_runs) "
        "ORDER BY model_id, change_type, field"
    ).fetchall()
    old_input = Decimal(by_id(models, "openai/gpt-4o")["pricing"]["input"]) * 10**6
    [price] = [r for r in rows if r[:3] == ("openai/gpt-4o", "price_changed", "cost_per_1m_input")]
    # Prices travel as exact decimal strings, never as JSON floats.
    assert isinstance(price[3], str) and isinstance(price[4], str)
    assert (Decimal(price[3]), Decimal(price[4]), price[5]) == (old_input, old_input * 2, 1)
    kinds = {(r[0], r[1], r[2]) for r in rows}
    assert {
        ("openai/gpt-4o", "limits_changed", "context_window"),
        ("openai/gpt-4o", "capabilities_changed", "capabilities"),
        ("openai/gpt-4o", "deprecated", "deprecated_at"),
        ("anthropic/claude-sonnet-4", "tiers_changed", "input_tiers"),
        (gone, "deactivated", None),
        ("newco/model-1", "created", None),
    } <= kinds
    meta = materialization_metadata(result, "ai_models")
    assert (meta["price_changes"], meta["limit_changes"], meta["capability_changes"]) == (1, 1, 1)
    assert (meta["tier_changes"], meta["deprecations"], meta["created_models"]) == (1, 1, 1)
    assert meta["deactivated_models"] == 1
    assert "| openai/gpt-4o | price_changed | cost_per_1m_input |" in meta["change_report"]


def shifted(models, model_id, key, factor):
    changed = json.loads(json.dumps(models))
    pricing = by_id(changed, model_id)["pricing"]
    pricing[key] = format(Decimal(pricing[key]) * Decimal(factor), "f")
    return changed


def test_a_paid_price_dropping_to_zero_fails_and_writes_nothing(run_sync, httpserver, db):
    models = seeded(run_sync, httpserver)
    before = db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall()
    versions = db.execute("SELECT count(*) FROM ai_model_versions").fetchone()
    result = run_sync(serve_models(httpserver, shifted(models, "openai/gpt-4o", "output", 0)))
    assert not result.success
    message = failure_message(result)
    old = Decimal(by_id(models, "openai/gpt-4o")["pricing"]["output"]) * 10**6
    assert f"openai/gpt-4o cost_per_1m_output: {format(old.normalize(), 'f')} → 0" in message
    assert db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall() == before
    assert db.execute("SELECT count(*) FROM ai_model_versions").fetchone() == versions
    assert db.execute("SELECT count(*) FROM ai_model_changes").fetchone() == (144,)


@pytest.mark.parametrize(("factor", "fails"), [("11", True), ("0.05", True), ("4", False)])
def test_large_price_moves_fail_and_moderate_ones_warn(run_sync, httpserver, db, factor, fails):
    models = seeded(run_sync, httpserver)
    result = run_sync(serve_models(httpserver, shifted(models, "openai/gpt-4o", "input", factor)))
    assert result.success is not fails
    if fails:
        assert "openai/gpt-4o cost_per_1m_input" in failure_message(result)
    else:
        warnings = db.execute(
            "SELECT warnings FROM model_sync_runs ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
        assert [w["model_id"] for w in warnings] == ["openai/gpt-4o"]
        assert materialization_metadata(result, "ai_models")["price_warnings"] == 1


def test_thresholds_are_configurable(run_sync, httpserver):
    models = seeded(run_sync, httpserver)
    changed = shifted(models, "openai/gpt-4o", "input", "11")
    assert run_sync(serve_models(httpserver, changed), anomaly_fail_factor=20.0).success


def test_vanishing_tiers_warn_but_pass(run_sync, httpserver, db):
    models = json.loads(json.dumps(snapshot_models(BASE)))
    tiered = by_id(models, "openai/gpt-4o")
    tiered["pricing"]["input_tiers"] = [{"cost": tiered["pricing"]["input"], "min": 0}]
    assert run_sync(serve_models(httpserver, models)).success
    del tiered["pricing"]["input_tiers"]
    assert run_sync(serve_models(httpserver, models)).success
    warnings = db.execute(
        "SELECT warnings FROM model_sync_runs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert warnings[0][0]["reason"] == "price tiers vanished"


def test_an_operator_can_accept_a_flagged_change_and_the_run_records_who_and_why(
    run_sync, httpserver, db, settings, instance
):
    from model_sync.definitions import build_definitions
    from model_sync.schedules import SYNC_JOB_NAME

    models = seeded(run_sync, httpserver)
    url = serve_models(httpserver, shifted(models, "openai/gpt-4o", "output", 0))
    job = build_definitions(configure(settings, url)).resolve_job_def(SYNC_JOB_NAME)
    run_config = {
        "ops": {
            "vercel_catalog_sync": {
                "config": {"accepted_by": "alice", "accept_reason": "launch promo, ticket 42"}
            }
        }
    }
    result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
    assert result.success
    accepted_by, reason, anomalies = db.execute(
        "SELECT accepted_by, accept_reason, anomalies FROM model_sync_runs "
        "WHERE status = 'success' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert (accepted_by, reason) == ("alice", "launch promo, ticket 42")
    assert [(a["model_id"], a["field"], a["new"]) for a in anomalies] == [
        ("openai/gpt-4o", "cost_per_1m_output", "0")
    ]
    assert db.execute(
        "SELECT cost_per_1m_output FROM ai_models WHERE model_id = 'openai/gpt-4o'"
    ).fetchone() == (0,)


def test_replaying_every_real_snapshot_through_the_job_passes_without_override(
    run_sync, httpserver
):
    for name, _ in vercel_snapshots():
        result = run_sync(serve_models(httpserver, snapshot_models(name)))
        assert result.success, (name, failure_message(result))
    assert check_evaluation(result, "ai_models_sync_stats").passed


def test_documented_backfill_command(database_url, db):
    import os

    env = {**os.environ, "MODEL_SYNC_DATABASE_URL": database_url}
    completed = run_cli("backfill", str(VERCEL_DIR), env=env)
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stdout.strip().splitlines()) >= len(saved_responses(VERCEL_DIR))
    captured = {at for _, at in vercel_snapshots()}
    opened = {row[0] for row in db.execute("SELECT DISTINCT valid_from FROM ai_model_versions")}
    assert opened <= captured and min(captured) in opened


def failure_message(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return "\n".join(e.step_failure_data.user_failure_data.description for e in failures)
