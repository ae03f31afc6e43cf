"""Every price is queryable, exactly: ``ai_model_price_points`` (SQL) and its Python twin find
the same prices in every real response; the view answers the README's queries; the history
answers "what did it cost then" for these prices too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from model_sync.pricing import PricePoint, price_points
from model_sync.sources.base import decode_json
from model_sync_tests.snapshots import snapshot_bytes, vercel_snapshots

LATEST = "models-2026-03-05.json"
PATH = "/v1/models"


def serve(httpserver, body: bytes) -> str:
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")
    return httpserver.url_for(PATH)


def sql_points(db: psycopg.Connection, pricings: list) -> list[set]:
    """ai_model_price_points of each pricing object, sent as JSON text (numbers stay exact)."""
    rows = db.execute(
        "SELECT e.position, p.path, p.amount, p.qualifiers "
        "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(pricing, position) "
        "CROSS JOIN LATERAL ai_model_price_points(e.pricing) AS p",
        (json.dumps(pricings),),
    ).fetchall()
    found: list[set] = [set() for _ in pricings]
    for position, path, amount, qualifiers in rows:
        found[position - 1].add((path, amount, json.dumps(qualifiers, sort_keys=True)))
    return found


def python_points(pricing) -> set:
    return {
        (p.path, p.amount, json.dumps(p.qualifiers, sort_keys=True, default=str))
        for p in price_points(pricing)
    }


@pytest.mark.parametrize("name", [name for name, _ in vercel_snapshots()])
def test_sql_and_python_find_the_same_prices_in_every_real_response(db, name):
    models = decode_json(snapshot_bytes(name))["data"]
    pricings = [model.get("pricing") for model in models]
    expected = [python_points(pricing) for pricing in pricings]
    served = [model.get("pricing") for model in json.loads(snapshot_bytes(name))["data"]]
    assert sql_points(db, served) == expected
    # Every flat price the gateway serves is among them, as served.
    for pricing, points in zip(pricings, expected, strict=True):
        for key in ("input", "output", "input_cache_read", "input_cache_write", "web_search"):
            if key in (pricing or {}):
                assert (key, Decimal(pricing[key]), "{}") in points


def test_price_points_of_real_models_by_hand():
    models = {m["id"]: m for m in decode_json(snapshot_bytes(LATEST))["data"]}
    video = price_points(models["google/veo-3.0-generate-001"]["pricing"])
    assert video == [
        PricePoint(
            "video_duration_pricing[0].cost_per_second",
            Decimal("0.2"),
            {"audio": False, "resolution": "720p"},
        ),
        PricePoint(
            "video_duration_pricing[1].cost_per_second",
            Decimal("0.4"),
            {"audio": True, "resolution": "720p"},
        ),
        PricePoint(
            "video_duration_pricing[2].cost_per_second",
            Decimal("0.2"),
            {"audio": False, "resolution": "1080p"},
        ),
        PricePoint(
            "video_duration_pricing[3].cost_per_second",
            Decimal("0.4"),
            {"audio": True, "resolution": "1080p"},
        ),
    ]
    tiered = {p.path: p for p in price_points(models["anthropic/claude-sonnet-4.6"]["pricing"])}
    # A band's bounds are its qualifiers; the overlap the gateway serves (max 200001 then
    # min 200000) is kept as served.
    assert tiered["input_tiers[1].cost"] == PricePoint(
        "input_tiers[1].cost", Decimal("0.000006"), {"min": 200001}
    )
    assert tiered["input_cache_read_tiers[1].cost"].qualifiers == {"min": 200000}
    assert tiered["web_search"] == PricePoint("web_search", Decimal("10"), {})
    assert len(tiered) == 5 + 8  # five flat prices, two bands in each of four tier lists
    image = price_points(models["openai/gpt-image-1"]["pricing"])
    assert (
        PricePoint(
            "image_dimension_quality_pricing[8].cost",
            Decimal("0.167"),
            {"quality": "high", "size": "1024x1024"},
        )
        in image
    )


def test_unknown_price_kinds_numbers_and_markers():
    """A new price kind appears without code changes; a JSON number is a price too; a
    negative marker (OpenRouter's "-1": the price varies) is not a price."""
    pricing = decode_json(
        b'{"per_character": 1.5e-05, "regional": {"eu": {"input": "0.000001"}},'
        b' "prompt": "-1", "tiers": [{"min_tokens": 1000, "cost": 2}], "label": "std"}'
    )
    assert price_points(pricing) == [
        PricePoint("per_character", Decimal("0.000015"), {"label": "std"}),
        PricePoint("regional.eu.input", Decimal("0.000001"), {}),
        PricePoint("tiers[0].cost", Decimal(2), {"min_tokens": 1000}),
    ]


def test_the_readme_video_query_answers_from_the_catalog(run_sync, httpserver, db):
    assert run_sync(serve(httpserver, snapshot_bytes(LATEST))).success
    # From the raw JSON: every video model's per-second price at 1080p.
    expected = sorted(
        (model["id"], Decimal(entry["cost_per_second"]), entry.get("audio"))
        for model in json.loads(snapshot_bytes(LATEST))["data"]
        for entry in model.get("pricing", {}).get("video_duration_pricing", [])
        if entry.get("resolution") == "1080p"
    )
    assert expected  # the fixture has them
    rows = db.execute(
        """
        SELECT model_id, amount, (qualifiers->>'audio')::boolean
        FROM ai_model_prices
        WHERE is_active AND path LIKE 'video_duration_pricing[%%].cost_per_second'
          AND qualifiers->>'resolution' = '1080p'
        ORDER BY model_id, amount, 3
        """
    ).fetchall()
    assert rows == expected


def test_prices_at_a_past_time_come_from_the_history(run_sync, httpserver, db):
    body = json.loads(snapshot_bytes(LATEST))
    assert run_sync(serve(httpserver, json.dumps(body).encode())).success
    between = db.execute("SELECT clock_timestamp()").fetchone()[0]
    for model in body["data"]:
        if model["id"] == "google/veo-3.0-generate-001":
            model["pricing"]["video_duration_pricing"][3]["cost_per_second"] = "0.5"
    result = run_sync(serve(httpserver, json.dumps(body).encode()))
    assert result.success
    path = "video_duration_pricing[3].cost_per_second"
    at = db.execute(
        "SELECT amount FROM ai_model_prices_at('vercel', 'google/veo-3.0-generate-001', %s) "
        "WHERE path = %s",
        (between, path),
    ).fetchone()
    now = db.execute(
        "SELECT amount FROM ai_model_prices_at('vercel', 'google/veo-3.0-generate-001', %s) "
        "WHERE path = %s",
        (datetime.now(UTC), path),
    ).fetchone()
    assert (at, now) == ((Decimal("0.4"),), (Decimal("0.5"),))
    # The change report names the path; 0.4 → 0.5 is +25 %.
    assert db.execute(
        "SELECT field, old_value, new_value, relative_change::text FROM ai_model_changes "
        "WHERE change_type = 'price_changed' AND sync_id = (SELECT max(id) FROM model_sync_runs)"
    ).fetchall() == [(f"pricing.{path}", "0.4", "0.5", "0.250000")]
