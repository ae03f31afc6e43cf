"""The exact cost of any usage at any time: the Python rule and SQL's ai_model_cost, by hand on
real models (flat, tiered, cached, web search, video and image meters), against each other on
every tiered model and at every tier boundary of the real responses, between and at price
versions, for a model no longer served — plus the HTTP API and the re-pricing command.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from model_sync.api import SyncBackend, create_app
from model_sync.auth import TokenVerifier
from model_sync.costing import MeterRule, PriceVersion, Usage, UsageError, cost_of
from model_sync.sources import get_source
from model_sync.store.costs import version_at
from model_sync_tests.apitools import SECRET, hs256_headers
from model_sync_tests.conftest import configure, run_cli
from model_sync_tests.snapshots import snapshot_path, vercel_snapshots

VERCEL = get_source("vercel")
OLD, NEW = "models-2025-11-18.json", "models-2026-03-05.json"
CAPTURED = dict(vercel_snapshots())
# Between the two captures (the 2025-11-18 prices are in force), and after the second.
BETWEEN = datetime(2026, 1, 15, tzinfo=UTC)
AFTER = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def priced(engine, tmp_path):
    """The catalog with the two newest real Vercel responses, each dated by its capture."""
    from model_sync.backfill import backfill

    folder = tmp_path / "responses"
    folder.mkdir()
    for name in (OLD, NEW):
        (folder / name).write_bytes(snapshot_path(name).read_bytes())
    (folder / "snapshots.csv").write_text(
        "file,captured_at_utc\n"
        + "".join(f"{name},{CAPTURED[name].isoformat()}\n" for name in (OLD, NEW))
    )
    backfill(engine, folder, source=VERCEL, report=lambda line: None)
    return engine


def sql_cost(db, model_id: str, at: datetime, usage: dict, source: str = "vercel") -> dict:
    text = db.execute(
        "SELECT ai_model_cost(%s, %s, %s, %s::jsonb)::text",
        (source, model_id, at, json.dumps(usage)),
    ).fetchone()[0]
    return json.loads(text, parse_float=Decimal)


def python_cost(engine, model_id: str, at: datetime, usage: dict, source: str = "vercel"):
    with engine.connect() as connection:
        version = version_at(connection, source, model_id, at)
    return cost_of(version, Usage.parse(usage), get_source(source).meter_rules)


def both(db, engine, model_id: str, at: datetime, usage: dict) -> dict:
    """The cost from SQL, after checking the Python twin says exactly the same."""
    in_sql = sql_cost(db, model_id, at, usage)
    in_python = python_cost(engine, model_id, at, usage)
    assert Decimal(in_sql["total"]) == in_python.total
    assert {k: Decimal(v) for k, v in in_sql["meters"].items()} == in_python.meters
    assert in_sql["unpriced"] == in_python.unpriced
    assert in_sql["version_id"] == in_python.version_id
    return in_sql


# --- by hand, on real models --------------------------------------------------------------


def test_a_flat_price(priced, db):
    # openai/gpt-4o (2026-03-05): input "0.0000025", output "0.00001" per token.
    cost = both(db, priced, "openai/gpt-4o", AFTER, {"input_tokens": 1000, "output_tokens": 500})
    assert cost["meters"] == {"input_tokens": Decimal("0.0025"), "output_tokens": Decimal("0.005")}
    assert cost["total"] == Decimal("0.0075") and cost["unpriced"] == []


@pytest.mark.parametrize(
    ("prompt", "input_cost", "output_cost"),
    [
        # anthropic/claude-sonnet-4.6: input bands [0, 200001) 0.000003 and [200001, …)
        # 0.000006; output bands 0.000015 / 0.0000225, chosen by the prompt size.
        (200000, Decimal("0.6"), Decimal("0.015")),
        (200001, Decimal("1.200006"), Decimal("0.0225")),
    ],
    ids=["last_token_of_the_first_band", "first_token_of_the_second_band"],
)
def test_a_tiered_price_at_its_boundary(priced, db, prompt, input_cost, output_cost):
    usage = {"input_tokens": prompt, "output_tokens": 1000}
    cost = both(db, priced, "anthropic/claude-sonnet-4.6", AFTER, usage)
    assert cost["meters"] == {"input_tokens": input_cost, "output_tokens": output_cost}


def test_cached_tokens_count_towards_the_band_and_overlapping_bands_take_the_first(priced, db):
    """Prompt = input + cache read + cache write. claude-sonnet-4.6's cache-read bands overlap
    as served ([0, 200001) and [200000, …)): at exactly 200000 the first band applies."""
    usage = {"input_tokens": 100000, "cache_read_tokens": 100000}
    cost = both(db, priced, "anthropic/claude-sonnet-4.6", AFTER, usage)
    assert cost["meters"] == {
        "input_tokens": Decimal("0.3"),  # 100000 × 0.000003
        "cache_read_tokens": Decimal("0.03"),  # 100000 × 0.0000003
    }
    usage = {"input_tokens": 100001, "cache_read_tokens": 100000}  # prompt 200001
    cost = both(db, priced, "anthropic/claude-sonnet-4.6", AFTER, usage)
    assert cost["meters"] == {
        "input_tokens": Decimal("0.600006"),  # 100001 × 0.000006
        "cache_read_tokens": Decimal("0.06"),  # 100000 × 0.0000006
    }


def test_web_search_calls_at_the_source_unit(priced, db):
    # Vercel serves web_search "10": USD 10 per 1,000 searches.
    cost = both(db, priced, "anthropic/claude-sonnet-4.6", AFTER, {"web_search_calls": 3})
    assert cost["meters"] == {"web_search_calls": Decimal("0.03")}


def test_video_and_image_meters_pick_their_price_by_qualifiers(priced, db):
    video = {"video_seconds": 8, "qualifiers": {"resolution": "1080p", "audio": True}}
    cost = both(db, priced, "google/veo-3.0-generate-001", AFTER, video)
    assert cost["meters"] == {"video_seconds": Decimal("3.2")}  # 8 s × 0.4
    image = {"images": 2, "qualifiers": {"size": "1024x1024", "quality": "high"}}
    cost = both(db, priced, "openai/gpt-image-1", AFTER, image)
    assert cost["meters"] == {"images": Decimal("0.334")}  # 2 × 0.167
    # Without qualifiers the price list does not say which entry: unpriced, never 0.
    cost = both(db, priced, "google/veo-3.0-generate-001", AFTER, {"video_seconds": 8})
    assert (cost["unpriced"], cost["meters"], cost["total"]) == (["video_seconds"], {}, 0)


def test_a_used_meter_without_a_price_is_named(priced, db):
    # Embedding models in 2026-03-05 have only an input price.
    cost = both(
        db,
        priced,
        "openai/text-embedding-3-small",
        AFTER,
        {"input_tokens": 1000, "output_tokens": 10, "characters": 5},
    )
    assert cost["unpriced"] == ["output_tokens", "characters"]
    assert set(cost["meters"]) == {"input_tokens"}


# --- prices in force at a time ------------------------------------------------------------


def test_the_version_in_force_prices_the_usage(priced, db):
    """alibaba/qwen3-vl-instruct input: 0.0000007 (2025-11-18) → 0.00000022 (2026-03-05)."""
    usage = {"input_tokens": 1_000_000}
    assert both(db, priced, "alibaba/qwen3-vl-instruct", BETWEEN, usage)["total"] == Decimal("0.7")
    assert both(db, priced, "alibaba/qwen3-vl-instruct", AFTER, usage)["total"] == Decimal("0.22")
    # Exactly at the boundary the new version is in force (valid_from inclusive).
    boundary = CAPTURED[NEW]
    assert both(db, priced, "alibaba/qwen3-vl-instruct", boundary, usage)["total"] == Decimal(
        "0.22"
    )
    just_before = boundary - timedelta(microseconds=1)
    assert both(db, priced, "alibaba/qwen3-vl-instruct", just_before, usage)["total"] == Decimal(
        "0.7"
    )


def test_a_model_not_served_then_is_a_clear_error(priced, db):
    import psycopg

    # xai/grok-2 is in the 2025-11-18 response and gone from 2026-03-05.
    assert both(db, priced, "xai/grok-2", BETWEEN, {"input_tokens": 10})["unpriced"] == []
    with pytest.raises(psycopg.errors.NoDataFound, match="was not served"):
        sql_cost(db, "xai/grok-2", AFTER, {"input_tokens": 10})
    with pytest.raises(psycopg.errors.NoDataFound, match="holds no version"):
        sql_cost(db, "openai/gpt-4o", datetime(2020, 1, 1, tzinfo=UTC), {"input_tokens": 10})
    assert json.loads(
        db.execute(
            "SELECT ai_model_cost_or_error('vercel', 'xai/grok-2', %s, '{}')::text", (AFTER,)
        ).fetchone()[0]
    )["error"].startswith("model xai/grok-2 of vercel was not served")
    with priced.connect() as connection:
        assert not version_at(connection, "vercel", "xai/grok-2", AFTER).is_active


@pytest.mark.parametrize(
    "usage",
    [{"tokens": 5}, {"input_tokens": -1}, {"input_tokens": 1.5}, {"input_tokens": "many"}],
    ids=["unknown_meter", "negative", "half_a_token", "not_a_number"],
)
def test_bad_usage_is_refused_in_both(priced, db, usage):
    import psycopg

    with pytest.raises(UsageError):
        Usage.parse(usage)
    with pytest.raises(
        (psycopg.errors.InvalidParameterValue, psycopg.errors.InvalidTextRepresentation)
    ):
        sql_cost(db, "openai/gpt-4o", AFTER, usage)


# --- SQL = Python at every tier boundary of every tiered real model -------------------------


def _tiered_models() -> dict[str, list[int]]:
    models = json.loads(snapshot_path(NEW).read_bytes())["data"]
    found = {}
    for model in models:
        bounds = {
            band.get(key)
            for tiers in (
                v for k, v in (model.get("pricing") or {}).items() if k.endswith("_tiers")
            )
            for band in tiers
            for key in ("min", "max")
            if band.get(key)
        }
        if bounds:
            found[model["id"]] = sorted(bounds)
    return found


TIERED = _tiered_models()


def test_there_are_tiered_models_to_compare():
    assert len(TIERED) == 18


@pytest.mark.parametrize("model_id", sorted(TIERED))
def test_sql_and_python_agree_at_every_tier_boundary(priced, db, model_id):
    for bound in TIERED[model_id]:
        for prompt in (bound - 1, bound, bound + 1):
            for split in (prompt, prompt // 2):
                usage = {
                    "input_tokens": split,
                    "cache_read_tokens": prompt - split,
                    "cache_write_tokens": 0,
                    "output_tokens": 777,
                    "web_search_calls": 2,
                }
                both(db, priced, model_id, AFTER, usage)


# --- properties ---------------------------------------------------------------------------

BANDS = [
    {"cost": "0.000003", "min": 0, "max": 200001},
    {"cost": "0.000006", "min": 200001},
]
VERSION = PriceVersion(
    version_id=1,
    source="vercel",
    model_id="acme/model",
    is_active=True,
    prices={
        "cost_per_1m_input": Decimal(3),
        "cost_per_1m_output": Decimal(15),
        "cost_per_1m_cache_read": Decimal("0.3"),
        "cost_per_1m_cache_write": None,
    },
    tiers={
        "input_tiers": BANDS,
        "output_tiers": None,
        "input_cache_read_tiers": None,
        "input_cache_write_tiers": None,
    },
    pricing={"web_search": "10"},
)
RULES = {"web_search_calls": MeterRule(r"^web_search$", unit_exponent=3)}
tokens = st.integers(min_value=0, max_value=10**9)


@settings(max_examples=300, deadline=None)
@given(a=st.integers(0, 200000), b=st.integers(0, 200000), output=tokens)
def test_cost_is_monotone_in_tokens_within_a_band(a, b, output):
    low, high = sorted((a, b))
    first = cost_of(VERSION, Usage.parse({"input_tokens": low, "output_tokens": output}), RULES)
    second = cost_of(VERSION, Usage.parse({"input_tokens": high, "output_tokens": output}), RULES)
    assert first.total <= second.total


@settings(max_examples=300, deadline=None)
@given(prompt=tokens, output=tokens, searches=st.integers(0, 10**6))
def test_cost_is_additive_across_meters(prompt, output, searches):
    """With the prompt (and so the band) fixed, each meter's cost does not depend on the
    others, and the total is their exact sum."""
    whole = cost_of(
        VERSION,
        Usage.parse(
            {"input_tokens": prompt, "output_tokens": output, "web_search_calls": searches}
        ),
        RULES,
    )
    parts = [
        cost_of(VERSION, Usage.parse({"input_tokens": prompt}), RULES).total,
        cost_of(VERSION, Usage.parse({"output_tokens": output}), RULES).total,
        cost_of(VERSION, Usage.parse({"web_search_calls": searches}), RULES).total,
    ]
    assert whole.total == sum(parts) == sum(whole.meters.values())
    # By hand: the band, the output per 1M, the searches per 1,000.
    per_token = Decimal("0.000003") if prompt < 200001 else Decimal("0.000006")
    expected = prompt * per_token + output * Decimal(15) / 10**6 + searches * Decimal(10) / 1000
    assert whole.total == expected


# --- HTTP, and re-pricing ---------------------------------------------------------------------


def test_the_costs_endpoint_prices_a_batch_with_errors_per_record(priced, settings):
    configured = configure(settings, jwt_secret=SECRET)
    app = create_app(
        configured, TokenVerifier.from_settings(configured.api), SyncBackend(None, None)
    )
    records = [
        {"source": "vercel", "model_id": "openai/gpt-4o", "at": AFTER.isoformat(),
         "usage": {"input_tokens": 1000, "output_tokens": 500}},
        {"canonical_model_id": "anthropic/claude-sonnet-4-6", "at": AFTER.isoformat(),
         "usage": {"input_tokens": 200001}},
        {"source": "vercel", "model_id": "xai/grok-2", "at": AFTER.isoformat(),
         "usage": {"input_tokens": 1}},
        {"source": "vercel", "model_id": "openai/gpt-4o", "usage": {"tokens": 1}},
    ]  # fmt: skip
    with TestClient(app) as client:
        response = client.post("/api/v1/costs", json={"records": records}, headers=hs256_headers())
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        too_many = client.post(
            "/api/v1/costs", json={"records": records[:1] * 1001}, headers=hs256_headers()
        )
        assert client.post("/api/v1/costs", json={"records": records}).status_code == 401
    assert results[0]["cost"] == {
        "total": "0.0075",
        "meters": {"input_tokens": "0.0025", "output_tokens": "0.005"},
        "version_id": results[0]["cost"]["version_id"],
        "unpriced": [],
    }
    assert (results[1]["source"], results[1]["model_id"]) == (
        "vercel",
        "anthropic/claude-sonnet-4.6",
    )
    assert results[1]["cost"]["total"] == "1.200006"
    assert "was not served" in results[2]["error"] and results[2]["cost"] is None
    assert results[3]["error"] == "unknown usage field(s): tokens"
    assert too_many.status_code == 422 and too_many.json() == {"error": "invalid request"}


def test_reprice_prices_last_month_at_todays_prices(priced, database_url, tmp_path):
    """`model-sync reprice usage.csv --at …`: each record at its own time and at another."""
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "source,model_id,ran_at,input_tokens,output_tokens\n"
        f"vercel,alibaba/qwen3-vl-instruct,{BETWEEN.isoformat()},1000000,1000000\n"
        f"vercel,xai/grok-2,{BETWEEN.isoformat()},10,\n"
    )
    out = tmp_path / "priced.csv"
    env = {**os.environ, "MODEL_SYNC_DATABASE_URL": database_url}
    done = run_cli("reprice", str(usage), "--at", AFTER.isoformat(), "--output", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert "priced 2 usage records" in done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    # qwen3-vl-instruct: 0.7 + 2.8 per 1M then, 0.22 + 0.88 at AFTER.
    assert (rows[0]["cost_then"], rows[0]["cost_at"], rows[0]["difference"]) == (
        "3.5",
        "1.1",
        "-2.4",
    )
    assert rows[1]["cost_then"] == "0.00002"  # 10 × "0.000002" per token (grok-2, 2025-11-18)
    assert rows[1]["cost_at"] == "" and "was not served" in rows[1]["error"]


HEADER = "source,model_id,ran_at,input_tokens,qualifiers\n"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        pytest.param(
            "vercel,a\x00b,2026-01-01T00:00:00Z,10,",
            "line 2: model_id: value contains a NUL character",
            id="nul-in-model-id",
        ),
        pytest.param(
            "vercel,openai/gpt-4o,yesterday,10,",
            "line 2: ran_at: 'yesterday' is not an ISO-8601 time",
            id="postgres-special-time",
        ),
        pytest.param(
            "vercel,openai/gpt-4o,2026-01-01T00:00:00,10,",
            "line 2: ran_at: '2026-01-01T00:00:00' has no time zone",
            id="time-without-zone",
        ),
        pytest.param(
            "vercel,openai/gpt-4o,2026-01-01T00:00:00Z,ten,",
            "line 2: input_tokens: count is not a decimal number: 'ten'",
            id="count-not-a-number",
        ),
        pytest.param(
            # A JSON escape for U+0000, which json.loads reads into a NUL character.
            'vercel,openai/gpt-4o,2026-01-01T00:00:00Z,10,"{""size"": ""1024\\u0000x1024""}"',
            "line 2: usage: qualifiers.size contains a NUL character",
            id="nul-in-qualifier",
        ),
    ],
)
def test_reprice_refuses_a_bad_record_and_keeps_the_output_file(
    database_url, tmp_path, record, message
):
    """A record Postgres would misread (``yesterday``, a zoneless time) or could not hold (NUL)
    stops the run naming its line and field, before anything reaches the database, and the
    file named by --output keeps what it held."""
    usage = tmp_path / "usage.csv"
    usage.write_text(HEADER + "vercel,openai/gpt-4o,2026-01-01T00:00:00Z,10,\n" + record + "\n")
    out = tmp_path / "priced.csv"
    out.write_text("last month's report\n")
    env = {**os.environ, "MODEL_SYNC_DATABASE_URL": database_url}
    done = run_cli("reprice", str(usage), "--at", "now", "--output", str(out), env=env)
    assert done.returncode == 1
    assert f"reprice stopped: {message.replace('line 2', 'line 3')}" in done.stderr
    assert "Traceback" not in done.stderr
    assert out.read_text() == "last month's report\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["priced.csv", "usage.csv"]


def test_reprice_without_its_database_says_so_and_keeps_the_output_file(database_url, tmp_path):
    usage = tmp_path / "usage.csv"
    usage.write_text(HEADER + "vercel,openai/gpt-4o,2026-01-01T00:00:00Z,10,\n")
    out = tmp_path / "priced.csv"
    out.write_text("last month's report\n")
    missing = database_url.rsplit("/", 1)[0] + "/model_sync_no_such_database"
    env = {**os.environ, "MODEL_SYNC_DATABASE_URL": missing}
    done = run_cli("reprice", str(usage), "--at", "now", "--output", str(out), env=env)
    assert done.returncode == 1
    assert "reprice stopped: OperationalError" in done.stderr
    assert '"model_sync_no_such_database" does not exist' in done.stderr
    assert "Traceback" not in done.stderr
    assert out.read_text() == "last month's report\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["priced.csv", "usage.csv"]


def test_the_readme_worked_example_and_last_month_query(priced, db):
    """README "Cost of any usage": the worked example, and the re-pricing query as printed."""
    usage = {"input_tokens": 150000, "cache_read_tokens": 60000, "output_tokens": 2000}
    cost = both(db, priced, "anthropic/claude-sonnet-4.6", AFTER, usage)
    assert cost["total"] == Decimal("0.981")
    assert cost["meters"] == {
        "input_tokens": Decimal("0.9"),
        "output_tokens": Decimal("0.045"),
        "cache_read_tokens": Decimal("0.036"),
    }
    db.execute(
        "CREATE TABLE usage_log (ran_at timestamptz, source text, model_id text, usage jsonb)"
    )
    last_month = datetime.now(UTC).replace(day=1) - timedelta(days=10)
    db.execute(
        "INSERT INTO usage_log VALUES (%s, 'vercel', 'openai/gpt-4o', %s), "
        "(%s, 'vercel', 'no/such-model', %s)",
        (last_month, json.dumps(usage), last_month, json.dumps(usage)),
    )
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    query = readme.split("SELECT u.ran_at, u.source, u.model_id,", 1)[1].split("```", 1)[0]
    rows = db.execute("SELECT u.ran_at, u.source, u.model_id," + query).fetchall()
    # gpt-4o at today's (2026-03-05) prices: 150000 × 0.0000025 + 60000 × 0.00000125
    # + 2000 × 0.00001 = 0.375 + 0.075 + 0.02 — the same as then (one version since).
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        ("openai/gpt-4o", Decimal("0.47"), Decimal("0.47"), Decimal("0")),
        ("no/such-model", None, None, None),
    ]
