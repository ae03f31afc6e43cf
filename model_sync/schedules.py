"""The sync job and its cron schedule.

The schedule is the safety net behind change detection (``sensors.py``): at each tick it asks
for one run per enabled source, so each source is synced, and fails, on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from model_sync.assets import FRAME, GROUP, RAW, SOURCE_TAG, TABLE, asset_key

SYNC_JOB_NAME = "ai_models_sync_job"
SCHEDULE_NAME = "ai_models_sync_schedule"
TRIGGER_TAG = "model_sync/triggered_by"

# One job for every source's pipeline and checks. The executor is set on Definitions
# (in-process): one process per step would multiply start-up on a 2-core machine.
ai_models_sync_job = define_asset_job(
    SYNC_JOB_NAME,
    selection=AssetSelection.groups(GROUP),
    description="Fetch each enabled source's models, normalize them, and sync ai_models.",
)


def source_asset_keys(source: str) -> list[AssetKey]:
    return [asset_key(source, name) for name in (RAW, FRAME, TABLE)]


def source_run_request(source: str, run_key: str | None, trigger: str) -> RunRequest:
    """A run of the sync job that syncs one source (its three assets and their checks)."""
    return RunRequest(
        run_key=run_key,
        job_name=SYNC_JOB_NAME,
        asset_selection=source_asset_keys(source),
        tags={SOURCE_TAG: source, TRIGGER_TAG: trigger},
    )


def sync_schedule(cron_schedule: str, enabled: bool, sources: Sequence[str]) -> ScheduleDefinition:
    @schedule(
        name=SCHEDULE_NAME,
        job=ai_models_sync_job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING if enabled else DefaultScheduleStatus.STOPPED,
        description="Syncs every enabled source, one run each (MODEL_SYNC_CRON_SCHEDULE, UTC).",
    )
    def _schedule(context: ScheduleEvaluationContext) -> list[RunRequest]:
        # The daemon always sets the tick's time: one run per source and tick.
        tick = context.scheduled_execution_time.isoformat()
        return [source_run_request(source, f"{source}:{tick}", "schedule") for source in sources]

    return _schedule
