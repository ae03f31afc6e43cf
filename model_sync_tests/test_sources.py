"""More sources, one catalog: OpenRouter, models.dev and LiteLLM beside Vercel.

Each source's rows are checked field by field against the raw JSON (numbers read as their
text, never as floats); the identity rules and the cross-source comparison are computed here
by hand from the README's rules; a failing source never blocks another; an implausible move
is accepted only when another source already shows it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import AssetKey

from model_sync.definitions import build_definitions
from model_sync.schedules import SYNC_JOB_NAME
from model_sync.settings import Settings, SettingsError
from model_sync.sources import SOURCES, get_source
from model_sync.sources.base import decode_json
from model_sync.transform import normalize
from model_sync_tests.snapshots import snapshot_path

FIXTURES = snapshot_path("models-2026-03-05.json").parent.parent
OPENROUTER = FIXTURES / "openrouter" / "models-2026-07-14.json"
MODELS_DEV = FIXTURES / "models-dev" / "api-2026-07-14.json"
LITELLM = FIXTURES / "litellm" / "model_prices_and_context_window-2026-07-24.json"
VERCEL = FIXTURES / "vercel" / "models-2026-03-05.json"
FILES = {"vercel": VERCEL, "openrouter": OPENROUTER, "models_dev": MODELS_DEV, "litellm": LITELLM}


def as_text(path: Path):
    """The JSON with every number kept as its text: expectations never touch a float."""
    return json.loads(path.read_bytes(), parse_float=str, parse_int=str)


def rows(name: str) -> dict[str, dict]:
    source = get_source(name)
    result = normalize(source, source.entries(decode_json(FILES[name].read_bytes())))
    assert result.broken == [] and result.skipped == []
    return {row["model_id"]: row for row in result.frame.to_dict("records")}


def per_million(per_token_text: str) -> Decimal:
    """Shift the decimal point six places by exponent arithmetic on the served text."""
    return Decimal(per_token_text).scaleb(6)


def exact(value, expected: Decimal | None) -> None:
    if expected is None:
        assert value is None or value != value  # None or pandas NA
    else:
        assert isinstance(value, Decimal) and value == expected


# --- each source, field by field -------------------------------------------------------------


def test_openrouter_rows_follow_the_served_prices_and_limits():
    served = as_text(OPENROUTER)["data"]
    found = rows("openrouter")
    assert len(found) == len(served) == 343
    routers = 0
    for model in served:
        row, pricing = found[model["id"]], model["pricing"]
        for key, column in (
            ("prompt", "cost_per_1m_input"),
            ("completion", "cost_per_1m_output"),
            ("input_cache_read", "cost_per_1m_cache_read"),
            ("input_cache_write", "cost_per_1m_cache_write"),
        ):
            text = pricing.get(key)
            # "-1": the price varies (a router) — stored as no price, never negative.
            exact(row[column], None if text in (None, "-1") else per_million(text))
        routers += pricing.get("prompt") == "-1"
        assert row["context_window"] == int(model["context_length"])
        top = model.get("top_provider") or {}
        if top.get("max_completion_tokens") is not None:
            assert row["max_output_tokens"] == int(top["max_completion_tokens"])
        assert row["price_role"] == "gateway"
        bands = [o for o in pricing.get("overrides", []) if "min_prompt_tokens" in o]
        if bands and "prompt" in bands[0]:
            assert [t["min"] for t in row["input_tiers"]] == [0] + [
                int(o["min_prompt_tokens"]) for o in bands
            ]
            assert [Decimal(t["cost"]) for t in row["input_tiers"]] == [
                Decimal(pricing["prompt"])
            ] + [Decimal(o["prompt"]) for o in bands]
    assert routers == 4  # openrouter/auto, fusion, pareto-code, bodybuilder


def test_models_dev_rows_read_costs_per_million_exactly_from_the_json_text():
    served = as_text(MODELS_DEV)
    found = rows("models_dev")
    expected_count = sum(len(provider["models"]) for provider in served.values())
    assert len(found) == expected_count == 5699
    tiered = 0
    for provider_id, provider in served.items():
        for model_key, model in provider["models"].items():
            row = found[f"{provider_id}/{model_key}"]
            cost = model.get("cost") or {}
            for key, column in (
                ("input", "cost_per_1m_input"),
                ("output", "cost_per_1m_output"),
                ("cache_read", "cost_per_1m_cache_read"),
                ("cache_write", "cost_per_1m_cache_write"),
            ):
                exact(row[column], Decimal(cost[key]) if key in cost else None)
            limit = model.get("limit") or {}
            if "context" in limit:
                assert row["context_window"] == int(limit["context"])
            if cost.get("tiers") and "input" in cost and "input" in cost["tiers"][0]:
                tiered += 1
                first = cost["tiers"][0]
                # Over N tokens: the band starts at N + 1; its cost per token is per-1M / 10^6.
                assert row["input_tiers"][1]["min"] == int(first["tier"]["size"]) + 1
                assert Decimal(row["input_tiers"][1]["cost"]) == Decimal(first["input"]).scaleb(-6)
    assert tiered > 100


def test_litellm_rows_skip_the_sample_spec_and_scale_json_numbers_exactly():
    served = as_text(LITELLM)
    found = rows("litellm")
    assert "sample_spec" not in found
    assert len(found) == len(served) - 1 == 2983
    for key, entry in served.items():
        if key == "sample_spec":
            continue
        row = found[key]
        for cost_key, column in (
            ("input_cost_per_token", "cost_per_1m_input"),
            ("output_cost_per_token", "cost_per_1m_output"),
            ("cache_read_input_token_cost", "cost_per_1m_cache_read"),
        ):
            exact(row[column], per_million(entry[cost_key]) if cost_key in entry else None)
        above = entry.get("input_cost_per_token_above_200k_tokens")
        if above is not None and "input_cost_per_token_above_128k_tokens" not in entry:
            assert row["input_tiers"][1] == {"cost": format(Decimal(above), "f"), "min": 200001}
    # The README's example: 1.25e-06 per token is exactly 1.25 per million.
    assert served["gpt-5"]["input_cost_per_token"] == "1.25e-06"
    assert str(found["gpt-5"]["cost_per_1m_input"]) == "1.25"


# --- identity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "model_id", "canonical"),
    [
        ("vercel", "xai/grok-3", "xai/grok-3"),
        ("openrouter", "x-ai/grok-4.20", "xai/grok-4-20"),
        ("openrouter", "deepseek/deepseek-r1", "deepseek/deepseek-r1"),
        ("openrouter", "tencent/hy3:free", "tencent/hy3:free"),
        ("openrouter", "meta-llama/llama-3.3-70b-instruct", "meta/llama-3-3-70b-instruct"),
        ("vercel", "anthropic/claude-opus-4.5", "anthropic/claude-opus-4-5"),
        ("models_dev", "anthropic/claude-opus-4-5", "anthropic/claude-opus-4-5"),
        ("models_dev", "requesty/google/gemini-2.5-pro", "google/gemini-2-5-pro"),
        ("litellm", "gpt-4o", "openai/gpt-4o"),
        ("litellm", "gemini/gemini-2.5-pro", "google/gemini-2-5-pro"),
    ],
)
def test_canonical_ids_follow_the_documented_rules(source, model_id, canonical):
    assert rows(source)[model_id]["canonical_model_id"] == canonical


@pytest.mark.parametrize(
    ("source", "model_id", "role"),
    [
        ("models_dev", "anthropic/claude-opus-4-5", "list"),
        ("models_dev", "requesty/google/gemini-2.5-pro", "reseller"),
        ("models_dev", "vercel/xai/grok-4.3", "reseller"),
        ("litellm", "gpt-4o", "list"),
        ("litellm", "gemini/gemini-2.5-pro", "list"),
        ("litellm", "vercel_ai_gateway/openai/gpt-4o", "reseller"),
        ("openrouter", "openai/gpt-4o", "gateway"),
    ],
)
def test_price_roles_say_whose_price_a_row_carries(source, model_id, role):
    assert rows(source)[model_id]["price_role"] == role


# --- configuration -------------------------------------------------------------------------


def test_sources_and_their_urls_come_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {
            "MODEL_SYNC_SOURCES": "vercel, openrouter,litellm",
            "MODEL_SYNC_GATEWAY_URL": "file:///srv/vercel.json",
            "MODEL_SYNC_OPENROUTER_URL": "/srv/openrouter.json",
        }
    )
    assert settings.source_names == ("vercel", "openrouter", "litellm")
    assert settings.source("vercel").url == "file:///srv/vercel.json"
    assert settings.source("openrouter").url == "/srv/openrouter.json"
    assert settings.source("litellm").url == SOURCES["litellm"].default_url
    # The source's own variable wins over the old one.
    both = {"MODEL_SYNC_GATEWAY_URL": "/a.json", "MODEL_SYNC_VERCEL_URL": "/b.json"}
    assert Settings.from_env(both).source("vercel").url == "/b.json"
    assert Settings.from_env({}).source_names == ("vercel",)


@pytest.mark.parametrize("value", ["vercel,bedrock", "vercel,vercel", ","])
def test_a_bad_source_list_fails_naming_the_variable(value):
    if value == ",":
        assert Settings.from_env({"MODEL_SYNC_SOURCES": value}).source_names == ("vercel",)
        return
    with pytest.raises(SettingsError, match="MODEL_SYNC_SOURCES"):
        Settings.from_env({"MODEL_SYNC_SOURCES": value})


# --- through the job -----------------------------------------------------------------------


def run(settings: Settings, instance, **urls):
    defs = build_definitions(settings.model_copy(update={"sources": ()}).with_source_urls(**urls))
    return defs.resolve_job_def(SYNC_JOB_NAME).execute_in_process(
        instance=instance, raise_on_error=False
    )


def counts(result, source: str) -> dict:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey([source, "ai_models"])
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_all_four_sources_sync_side_by_side(settings, instance, db):
    result = run(settings, instance, **{name: str(path) for name, path in FILES.items()})
    assert result.success
    expected = {"vercel": 232, "openrouter": 343, "models_dev": 5699, "litellm": 2983}
    for name, total in expected.items():
        assert counts(result, name)["created"] == total
    assert (
        dict(
            db.execute(
                "SELECT source, count(*) FROM ai_models WHERE is_active GROUP BY 1"
            ).fetchall()
        )
        == expected
    )
    # No negative price from any source (OpenRouter's -1 routers are NULL).
    assert db.execute(
        "SELECT count(*) FROM ai_models WHERE cost_per_1m_input < 0 OR cost_per_1m_output < 0"
    ).fetchone() == (0,)


def test_a_failing_source_never_blocks_another(settings, instance, db, httpserver):
    httpserver.expect_request("/api/v1/models").respond_with_data("down", status=500)
    result = run(
        settings.model_copy(update={"http": settings.http.model_copy(update={"max_retries": 0})}),
        instance,
        vercel=str(VERCEL),
        openrouter=httpserver.url_for("/api/v1/models"),
    )
    assert not result.success
    assert counts(result, "vercel")["created"] == 232
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failed == ["openrouter_catalog_sync"]
    assert db.execute("SELECT DISTINCT source FROM ai_models").fetchall() == [("vercel",)]


def _served(path: Path, model_id: str, key: str, price_text: str) -> bytes:
    body = json.loads(path.read_bytes())
    for model in body["data"]:
        if model["id"] == model_id:
            model["pricing"][key] = price_text
    return json.dumps(body).encode()


def comparison_rows(db, canonical: str):
    return db.execute(
        "SELECT source, price_field, price_per_1m::text, spread::text, disagrees "
        "FROM ai_model_price_comparison WHERE canonical_model_id = %s ORDER BY 2, 1",
        (canonical,),
    ).fetchall()


def test_the_comparison_by_hand_and_the_alias_table(settings, instance, db):
    assert run(settings, instance, vercel=str(VERCEL), openrouter=str(OPENROUTER)).success
    # deepseek/deepseek-r1 from the raw JSON: Vercel 0.0000005 / 0.00000215 per token,
    # OpenRouter 0.0000007 / 0.0000025 → per 1M 0.5 vs 0.7 (spread 0.4) and 2.15 vs 2.5
    # (2.5 / 2.15 − 1 = 0.1627906976…).
    found = comparison_rows(db, "deepseek/deepseek-r1")
    assert [(r[0], r[1], r[2], r[4]) for r in found] == [
        ("openrouter", "input", "0.7", True),
        ("vercel", "input", "0.5", True),
        ("openrouter", "output", "2.5", True),
        ("vercel", "output", "2.15", True),
    ]
    assert Decimal(found[0][3]) == Decimal("0.4")
    assert Decimal(found[2][3]).quantize(Decimal("0.000001")) == Decimal("0.162791")
    # Within a looser tolerance they agree.
    db.execute("SET model_sync.price_tolerance = '0.5'")
    assert not any(r[4] for r in comparison_rows(db, "deepseek/deepseek-r1"))
    db.execute("RESET model_sync.price_tolerance")
    # A user alias overrides the derived identity; no sync touches it.
    db.execute(
        "INSERT INTO model_aliases (source, model_id, canonical_model_id) "
        "VALUES ('openrouter', 'deepseek/deepseek-r1', 'mine/r1')"
    )
    assert [r[0] for r in comparison_rows(db, "deepseek/deepseek-r1")] == []
    assert run(settings, instance, vercel=str(VERCEL), openrouter=str(OPENROUTER)).success
    assert db.execute("SELECT canonical_model_id FROM model_aliases").fetchall() == [("mine/r1",)]


def test_a_20x_move_is_accepted_only_when_another_source_shows_it(settings, instance, db, tmp_path):
    model = "deepseek/deepseek-r1"
    assert run(settings, instance, vercel=str(VERCEL), openrouter=str(OPENROUTER)).success
    before = db.execute(
        "SELECT source, cost_per_1m_input::text FROM ai_models WHERE model_id = %s ORDER BY 1",
        (model,),
    ).fetchall()
    assert before == [("openrouter", "0.7"), ("vercel", "0.5")]

    # OpenRouter moves 20×: nobody else shows 14, so it is refused and nothing changes.
    moved = tmp_path / "openrouter-20x.json"
    moved.write_bytes(_served(OPENROUTER, model, "prompt", "0.000014"))  # 0.7 → 14
    result = run(settings, instance, vercel=str(VERCEL), openrouter=str(moved))
    assert not result.success
    assert (
        db.execute(
            "SELECT source, cost_per_1m_input::text FROM ai_models WHERE model_id = %s ORDER BY 1",
            (model,),
        ).fetchall()
        == before
    )

    # Vercel moves 20× to 10 per 1M and OpenRouter (accepted by hand) to 10 too: OpenRouter
    # first, with an operator's acceptance…
    openrouter_10 = tmp_path / "openrouter-10.json"
    openrouter_10.write_bytes(_served(OPENROUTER, model, "prompt", "0.00001"))
    defs = build_definitions(
        settings.model_copy(update={"sources": ()}).with_source_urls(openrouter=str(openrouter_10))
    )
    accepted = defs.resolve_job_def(SYNC_JOB_NAME).execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={
            "ops": {
                "openrouter_catalog_sync": {
                    "config": {"accepted_by": "alice", "accept_reason": "announced"}
                }
            }
        },
    )
    assert accepted.success
    # …then Vercel's own 20× move is corroborated by OpenRouter: accepted, no human.
    vercel_20x = tmp_path / "vercel-20x.json"
    vercel_20x.write_bytes(_served(VERCEL, model, "input", "0.00001"))  # 0.5 → 10
    result = run(settings, instance, vercel=str(vercel_20x), openrouter=str(openrouter_10))
    assert result.success, [
        e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    ]
    assert db.execute(
        "SELECT cost_per_1m_input::text FROM ai_models WHERE source = 'vercel' AND model_id = %s",
        (model,),
    ).fetchone() == ("10",)
    corroborated = db.execute(
        "SELECT corroborated, accepted_by FROM model_sync_runs WHERE source = 'vercel' "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert corroborated[1] is None
    [entry] = corroborated[0]
    assert (entry["model_id"], entry["field"], entry["old"], entry["new"]) == (
        model,
        "cost_per_1m_input",
        "0.5",
        "10",
    )
    assert (entry["corroborated_by"], entry["their_price"]) == ("openrouter", "10")


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_source_maps_a_model_to_exactly_the_catalog_columns(name):
    """A source's rows carry every frame column and nothing else (a misspelt column would
    otherwise be silently dropped when the frame is built)."""
    from model_sync.transform import FRAME_COLUMNS

    source = get_source(name)
    for model_id, raw in source.entries(decode_json(FILES[name].read_bytes()))[:200]:
        model = source.model.model_validate(raw)
        assert set(source.to_row(model, model_id, raw)) == set(FRAME_COLUMNS), model_id
