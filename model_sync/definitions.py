"""The code location: wiring only. ``workspace.yaml``, ``dagster -m`` and ``dg`` load ``defs``.

Every enabled source (``MODEL_SYNC_SOURCES``) gets its assets from one factory, its checks,
and a run per source at each schedule tick; the resources hold the settings groups whole.
"""

from __future__ import annotations

import logging

from dagster import Definitions, in_process_executor

from model_sync.assets import source_assets
from model_sync.checks import source_checks
from model_sync.resources import CatalogDatabase, ChangeFeed, GatewayClient
from model_sync.schedules import ai_models_sync_job, sync_schedule
from model_sync.sensors import change_sensor, webhook_delivery_sensor
from model_sync.settings import Settings
from model_sync.sources import get_source

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


def build_definitions(settings: Settings) -> Definitions:
    sources = settings.source_names
    if settings.enabled:
        logger.info(f"AI Model Sync Scheduler initialized with cron: {settings.cron_schedule}")
    else:
        logger.info("AI Model Sync Scheduler is disabled (MODEL_SYNC_ENABLED=false)")
    return Definitions(
        assets=[
            source_assets(
                get_source(name),
                settings.freshness_hours,
                peer_sources=[peer for peer in sources if peer != name],
            )
            for name in sources
        ],
        asset_checks=[
            check for name in sources for check in source_checks(name, compared=len(sources) > 1)
        ],
        jobs=[ai_models_sync_job],
        schedules=[sync_schedule(settings.cron_schedule, settings.enabled, sources)],
        sensors=[
            webhook_delivery_sensor(settings.enabled),
            *(
                change_sensor(name, settings.poll_seconds, settings.enabled)
                for name in (sources if settings.poll_seconds else ())
            ),
        ],
        resources={
            "gateways": GatewayClient.from_settings(settings),
            "catalog": CatalogDatabase.from_settings(settings),
            "change_feed": ChangeFeed.from_settings(settings),
        },
        executor=in_process_executor,
    )


def _load() -> Definitions:
    return build_definitions(Settings.from_env())


defs = _load()
