"""Schema migrations: in-place upgrades that keep data and user settings, and a head that
matches the table definitions the code uses."""

from __future__ import annotations

import os

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg.types.json import Jsonb

from model_sync.store import database, migrate
from model_sync.store.tables import metadata
from model_sync_tests.conftest import run_cli
from model_sync_tests.snapshots import snapshot_models, snapshot_path

FIRST_REVISION = "0001_ai_models"


def _engine(url: str):
    return database.engine_for(database.sqlalchemy_url(url))


def test_revisions_form_one_line_from_the_first_to_head():
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [rev.revision for rev in script.walk_revisions("base", "heads")]
    assert revisions[-1] == FIRST_REVISION
    assert revisions[0] == migrate.head_revision()
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
    and the first sync after it."""
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
        before = db.execute(
            "SELECT model_id, is_recommended, priority FROM ai_models ORDER BY model_id"
        ).fetchall()

        assert migrate.upgrade(engine) == migrate.head_revision()
        assert migrate.upgrade(engine) == migrate.head_revision()  # idempotent
        after = db.execute(
            "SELECT model_id, is_recommended, priority FROM ai_models ORDER BY model_id"
        ).fetchall()
        assert after == before
        # History starts from what the catalog already knew: one open version per model.
        assert db.execute(
            "SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM ai_model_versions"
        ).fetchone() == (5, 5)

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
        assert db.execute("SELECT count(*) FROM ai_models").fetchone() == (len(models),)


def test_documented_migrate_command_creates_the_schema(empty_database_url):
    env = {**os.environ, "MODEL_SYNC_DATABASE_URL": empty_database_url}
    completed = run_cli("migrate", env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert f"catalog schema is at revision {migrate.head_revision()}" in completed.stdout
    with psycopg.connect(empty_database_url) as db:
        tables = {
            row[0]
            for row in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {"ai_models", "model_sync_runs", migrate.VERSION_TABLE} <= tables
