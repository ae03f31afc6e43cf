"""The sync job and its cron schedule."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
)

from model_sync.assets import GROUP

SYNC_JOB_NAME = "ai_models_sync_job"
SCHEDULE_NAME = "ai_models_sync_schedule"

# One job for the whole pipeline and its checks. The executor is set on Definitions
# (in-process): one process per step would triple start-up on a 2-core machine.
ai_models_sync_job = define_asset_job(
    SYNC_JOB_NAME,
    selection=AssetSelection.groups(GROUP),
    description="Fetch the gateway's models, normalize them, and sync the ai_models table.",
)


def sync_schedule(cron_schedule: str, enabled: bool) -> ScheduleDefinition:
    return ScheduleDefinition(
        name=SCHEDULE_NAME,
        job=ai_models_sync_job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING if enabled else DefaultScheduleStatus.STOPPED,
        description="Syncs the AI model catalog (MODEL_SYNC_CRON_SCHEDULE, UTC).",
    )
