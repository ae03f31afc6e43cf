"""Schema migrations: in-place upgrades that keep data and user settings, and a head that
matches the table definitions the code uses."""

from __future__ import annotations

import os

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg.types.json import Jsonb

from model_sync.sources import get_source
from model_sync.store import database, migrate
from model_sync.store.tables import metadata
from model_sync_tests.conftest import run_cli
from model_sync_tests.snapshots import snapshot_models, snapshot_path

FIRST_REVISION = "0001_ai_models"
HEAD_REVISION = "0007_cost_of_usage"

# The canonical id rule, written out here by hand: "provider/model", the provider part
# lowercased and its alias unified, the model part lowercased with dots as dashes. An id
# without a slash is its own provider and model part.
PROVIDER_ALIASES = {
    "x-ai": "xai",
    "z-ai": "zai",
    "zhipuai": "zai",
    "meta-llama": "meta",
    "mistralai": "mistral",
    "qwen": "alibaba",
    "moonshot": "moonshotai",
    "gemini": "google",
    "vertex_ai": "google",
    "amazon-nova": "amazon",
    "voyageai": "voyage",
}


def canonical_by_hand(model_id: str) -> str:
    provider, slash, model = model_id.partition("/")
    provider = provider.lower()
    model = (model if slash else model_id).lower().replace(".", "-")
    return f"{PROVIDER_ALIASES.get(provider, provider)}/{model}"


# Rows an older catalog may hold (kept inactive, so the first sync after the upgrade leaves
# them alone), with their canonical ids worked out by hand.
LEGACY_IDS = {
    "anthropic/claude-2.1": "anthropic/claude-2-1",
    "x-ai/Grok-4.1-Fast": "xai/grok-4-1-fast",
    "Z-AI/GLM-4.6": "zai/glm-4-6",
    "zhipuai/glm-4.5-air": "zai/glm-4-5-air",
    "meta-llama/Llama-3.3-70B-Instruct": "meta/llama-3-3-70b-instruct",
    "MistralAI/Mistral-Large-2411": "mistral/mistral-large-2411",
    "qwen/Qwen3-235B-A22B": "alibaba/qwen3-235b-a22b",
    "moonshot/kimi-k2.5": "moonshotai/kimi-k2-5",
    "gemini/gemini-2.5-pro": "google/gemini-2-5-pro",
    "vertex_ai/gemini-2.0-flash": "google/gemini-2-0-flash",
    "amazon-nova/nova-pro-v1.0": "amazon/nova-pro-v1-0",
    "voyageai/voyage-3.5-lite": "voyage/voyage-3-5-lite",
    "Google/Gemini-2.5-Flash": "google/gemini-2-5-flash",
    # Only the first slash splits; dots in the provider part stay.
    "openai/gpt-oss/120b.v2": "openai/gpt-oss/120b-v2",
    "deepseek.ai/DeepSeek-V3.1": "deepseek.ai/deepseek-v3-1",
    "gpt-5.1": "gpt-5.1/gpt-5-1",
}


def test_the_rule_by_hand_gives_the_worked_out_ids():
    """The helper above agrees with the ids worked out by hand, so it can be trusted for the
    snapshot's ids below; and the Python rule the sync applies gives the same ids as the
    upgrade's SQL must (next tests)."""
    assert {model_id: canonical_by_hand(model_id) for model_id in LEGACY_IDS} == LEGACY_IDS
    vercel = get_source("vercel")
    assert {
        model_id: vercel.canonical_id(model_id, {"id": model_id}) for model_id in LEGACY_IDS
    } == LEGACY_IDS


def _engine(url: str):
    return database.engine_for(database.sqlalchemy_url(url))


def test_revisions_form_one_line_from_the_first_to_head():
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [rev.revision for rev in script.walk_revisions("base", "heads")]
    assert revisions[::-1] == [
        FIRST_REVISION,
        "0002_model_sync_runs",
        "0003_history_and_change_feed",
        "0004_served_models_never_lost",
        "0005_api_sync_requests",
        "0006_sources_side_by_side",
        HEAD_REVISION,
    ]
    assert migrate.head_revision() == HEAD_REVISION
    assert len(script.get_heads()) == 1


def test_head_schema_matches_the_table_definitions(empty_database_url):
    engine = _engine(empty_database_url)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(
                connection, opts={"compare_type": True, "version_table": migrate.VERSION_TABLE}
            ),
            metadata,
        )
    assert diff == []


def test_upgrade_from_the_first_revision_keeps_rows_and_user_settings(
    empty_database_url, run_sync, httpserver, settings
):
    """A catalog created by the first revision, with users' edits, survives every upgrade
    and the first sync after it. The upgrade gives the existing (Vercel) rows their canonical
    ids by the rule, and the gateway price role."""
    engine = _engine(empty_database_url)
    assert migrate.upgrade(engine, FIRST_REVISION) == FIRST_REVISION
    models = snapshot_models("models-2025-11-18.json")
    with psycopg.connect(empty_database_url, autocommit=True) as db:
        for position, model in enumerate(models[:5]):
            db.execute(
                "INSERT INTO ai_models (source, model_id, model_name, raw, is_recommended, "
                "priority) VALUES ('vercel', %s, %s, %s, true, %s)",
                (model["id"], model["name"], Jsonb(model), position + 1),
            )
        for model_id in LEGACY_IDS:
            db.execute(
                "INSERT INTO ai_models (source, model_id, raw, is_active) "
                "VALUES ('vercel', %s, %s, false)",
                (model_id, Jsonb({"id": model_id})),
            )
        before = db.execute(
            "SELECT model_id, is_recommended, priority FROM ai_models WHERE is_recommended "
            "ORDER BY model_id"
        ).fetchall()
        assert len(before) == 5

        assert migrate.upgrade(engine) == HEAD_REVISION
        assert migrate.upgrade(engine) == HEAD_REVISION  # idempotent
        after = db.execute(
            "SELECT model_id, is_recommended, priority FROM ai_models WHERE is_recommended "
            "ORDER BY model_id"
        ).fetchall()
        assert after == before
        # History starts from what the catalog already knew: one open version per model.
        rows = 5 + len(LEGACY_IDS)
        assert db.execute(
            "SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM ai_model_versions"
        ).fetchone() == (rows, rows)
        # Every existing row: its canonical id by the rule, and the gateway's price role.
        identities = db.execute(
            "SELECT model_id, canonical_model_id, price_role FROM ai_models"
        ).fetchall()
        assert len(identities) == rows
        expected = {**{m["id"]: canonical_by_hand(m["id"]) for m in models[:5]}, **LEGACY_IDS}
        assert {model_id: (canonical, role) for model_id, canonical, role in identities} == {
            model_id: (canonical, "gateway") for model_id, canonical in expected.items()
        }

        httpserver.expect_request("/v1/models").respond_with_data(
            snapshot_path("models-2025-11-18.json").read_bytes(), content_type="application/json"
        )
        result = run_sync(httpserver.url_for("/v1/models"), database_url=empty_database_url)
        assert result.success
        synced = db.execute(
            "SELECT model_id, is_recommended, priority FROM ai_models WHERE is_recommended "
            "ORDER BY model_id"
        ).fetchall()
        assert synced == before
        assert db.execute("SELECT count(*) FROM ai_models").fetchone() == (
            len(models) + len(LEGACY_IDS),
        )
        # The sync writes the same identity by the same rule; the rows it no longer serves
        # keep what the upgrade gave them.
        identities = db.execute(
            "SELECT model_id, canonical_model_id, price_role FROM ai_models"
        ).fetchall()
        assert {model_id: (canonical, role) for model_id, canonical, role in identities} == {
            **{m["id"]: (canonical_by_hand(m["id"]), "gateway") for m in models},
            **{model_id: (canonical, "gateway") for model_id, canonical in LEGACY_IDS.items()},
        }


def test_documented_migrate_command_creates_the_schema(empty_database_url):
    env = {**os.environ, "MODEL_SYNC_DATABASE_URL": empty_database_url}
    completed = run_cli("migrate", env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert f"catalog schema is at revision {HEAD_REVISION}" in completed.stdout
    with psycopg.connect(empty_database_url) as db:
        tables = {
            row[0]
            for row in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {"ai_models", "model_sync_runs", migrate.VERSION_TABLE} <= tables
