"""The code location: wiring only. ``workspace.yaml`` and ``dagster -m`` load ``defs``."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from dagster import (
    Definitions,
    EnvVar,
    FreshnessPolicy,
    in_process_executor,
)

from model_sync.assets import ai_models, ai_models_frame, gateway_models_raw
from model_sync.checks import ai_models_sync_stats, ai_models_webhook_deliveries
from model_sync.resources import CatalogDatabase, ChangeFeed, GatewayClient
from model_sync.schedules import ai_models_sync_job, sync_schedule
from model_sync.sensors import webhook_delivery_sensor
from model_sync.settings import Settings

logger = logging.getLogger("model_sync")
if not logger.handlers:
    # The load-time lines (scheduler initialized / disabled) are meant for operators reading
    # `dagster dev` or CLI output; without a handler Python would drop INFO records.
    _handler = logging.StreamHandler()
    _handler.setFormatter(
        logging.Formatter("%(asctime)s - model_sync - %(levelname)s - %(message)s")
    )
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)


def _from_env(name: str, value):
    """Secrets and URLs given by env var stay references (not values) in the Dagster UI.

    Only when the setting really came from that variable: settings built in code (tests, the
    API) must never be silently replaced by whatever the environment happens to hold.
    """
    return EnvVar(name) if value and os.environ.get(name, "").strip() == value else value


def build_definitions(settings: Settings) -> Definitions:
    freshness = FreshnessPolicy.time_window(fail_window=timedelta(hours=settings.freshness_hours))
    catalog_asset = ai_models.map_asset_specs(
        lambda spec: spec.replace_attributes(freshness_policy=freshness)
    )
    if settings.enabled:
        logger.info(f"AI Model Sync Scheduler initialized with cron: {settings.cron_schedule}")
    else:
        logger.info("AI Model Sync Scheduler is disabled (MODEL_SYNC_ENABLED=false)")
    return Definitions(
        assets=[gateway_models_raw, ai_models_frame, catalog_asset],
        asset_checks=[ai_models_sync_stats, ai_models_webhook_deliveries],
        jobs=[ai_models_sync_job],
        schedules=[sync_schedule(settings.cron_schedule, settings.enabled)],
        sensors=[webhook_delivery_sensor(settings.enabled)],
        resources={
            "gateway": GatewayClient(
                url=_from_env("MODEL_SYNC_GATEWAY_URL", settings.gateway_url),
                timeout_seconds=settings.http_timeout_seconds,
                max_retries=settings.http_max_retries,
                backoff_seconds=settings.http_backoff_seconds,
                max_body_bytes=settings.max_body_bytes,
            ),
            "catalog": CatalogDatabase(
                database_url=_from_env("MODEL_SYNC_DATABASE_URL", settings.database_url),
                data_dir=str(settings.data_dir),
                max_deactivation_share=settings.max_deactivation_share,
                max_failed_share=settings.max_failed_share,
                anomaly_fail_factor=settings.anomaly_fail_factor,
                anomaly_warn_factor=settings.anomaly_warn_factor,
                concurrent_sync=settings.concurrent_sync,
                lock_timeout_seconds=settings.lock_timeout_seconds,
                statement_timeout_seconds=settings.statement_timeout_seconds,
            ),
            "change_feed": ChangeFeed(
                urls=list(settings.webhook_urls),
                secret=_from_env("MODEL_SYNC_WEBHOOK_SECRET", settings.webhook_secret),
                timeout_seconds=settings.webhook_timeout_seconds,
                backoff_seconds=settings.webhook_backoff_seconds,
                alert_after_attempts=settings.webhook_alert_after_attempts,
            ),
        },
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
