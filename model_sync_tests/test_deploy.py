"""The production instance (deploy/dagster.yaml): Dagster's own storage in Postgres.

The catalog and Dagster's storage share one database here on purpose: it proves the two
schemas (and their migration bookkeeping) can live side by side.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, build_schedule_context

from model_sync.definitions import build_definitions
from model_sync.schedules import SCHEDULE_NAME, SYNC_JOB_NAME
from model_sync.settings import normalize_cron
from model_sync_tests.conftest import configure
from model_sync_tests.snapshots import snapshot_path

DEPLOY_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "dagster.yaml"


@pytest.fixture
def production_home(tmp_path, database_url, monkeypatch) -> Path:
    shutil.copy(DEPLOY_CONFIG, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", database_url)
    monkeypatch.setenv("DAGSTER_MAX_CONCURRENT_RUNS", "1")
    return tmp_path


def test_sync_runs_through_postgres_storage_and_is_read_back(production_home, settings, db):
    instance = DagsterInstance.from_config(str(production_home))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"

    gateway = str(snapshot_path("models-2025-11-18.json"))
    defs = build_definitions(configure(settings, gateway))
    result = defs.resolve_job_def(SYNC_JOB_NAME).execute_in_process(instance=instance)
    assert result.success

    # A fresh instance on the same storage — as the webserver or daemon would be — sees it all.
    reader = DagsterInstance.from_config(str(production_home))
    run = reader.get_run_by_id(result.run_id)
    assert run is not None and run.status == DagsterRunStatus.SUCCESS
    event = reader.get_latest_materialization_event(AssetKey(["vercel", "ai_models"]))
    assert event is not None and event.run_id == result.run_id
    metadata = event.asset_materialization.metadata
    assert metadata["created"].value == 144
    for name in ("gateway_models_raw", "ai_models_frame"):
        event = reader.get_latest_materialization_event(AssetKey(["vercel", name]))
        assert event is not None and event.run_id == result.run_id
    # One step fetches, reads and loads; each check of the catalog asset is its own step.
    steps = {stats.step_key: stats.status.value for stats in reader.get_run_step_stats(run.run_id)}
    assert steps == {
        "vercel_catalog_sync": "SUCCESS",
        "vercel__ai_models_ai_models_sync_stats": "SUCCESS",
        "vercel__ai_models_ai_models_schema_drift": "SUCCESS",
        "vercel__ai_models_ai_models_webhook_deliveries": "SUCCESS",
    }
    # It really is in Postgres, next to the catalog.
    assert db.execute("SELECT count(*) FROM runs WHERE run_id = %s", (result.run_id,)).fetchone()
    assert db.execute("SELECT count(*) FROM ai_models").fetchone() == (144,)


@pytest.mark.parametrize(
    ("cron", "expected_cron", "tick", "run_key"),
    [
        (
            "0 0 2 * * *",
            "0 2 * * *",
            datetime(2026, 11, 27, 2, 0, tzinfo=UTC),
            "vercel:2026-11-27T02:00:00+00:00",
        ),
        (
            "0 0 */6 * * *",
            "0 */6 * * *",
            datetime(2026, 11, 27, 18, 0, tzinfo=UTC),
            "vercel:2026-11-27T18:00:00+00:00",
        ),
    ],
)
def test_schedule_evaluates_a_tick_against_the_production_instance(
    production_home, settings, cron, expected_cron, tick, run_key
):
    """The old module's six-field crons, as set in MODEL_SYNC_CRON_SCHEDULE, become these
    five-field ones (written out by hand), and a tick asks for one run of the sync job for
    the one enabled source, Vercel: its three assets, keyed by source and tick time."""
    instance = DagsterInstance.from_config(str(production_home))
    defs = build_definitions(settings.model_copy(update={"cron_schedule": normalize_cron(cron)}))
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    assert schedule.cron_schedule == expected_cron
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == SYNC_JOB_NAME == "ai_models_sync_job"
    with build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
        data = schedule.evaluate_tick(context)
    [request] = data.run_requests
    assert request.job_name == "ai_models_sync_job"
    assert request.run_key == run_key
    assert request.asset_selection == [
        AssetKey(["vercel", "gateway_models_raw"]),
        AssetKey(["vercel", "ai_models_frame"]),
        AssetKey(["vercel", "ai_models"]),
    ]
    assert request.tags == {
        "model_sync/source": "vercel",
        "model_sync/triggered_by": "schedule",
        "dagster/schedule_name": "ai_models_sync_schedule",
    }
