"""Asset checks on the catalog: the sync stats users of the old module relied on.

Freshness is not a check here: ``ai_models`` carries a ``FreshnessPolicy`` (see
``definitions.py``), which Dagster evaluates itself.
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from model_sync import webhooks
from model_sync.assets import SOURCE, ai_models
from model_sync.resources import CatalogDatabase, ChangeFeed
from model_sync.store.sync import catalog_stats, iso_utc, last_successful_sync


@asset_check(
    asset=ai_models,
    description=(
        "Catalog stats (totalModels, activeModels, inactiveModels, lastSyncDate). Fails when no "
        "model is active, or when the last sync skipped more than the allowed share of models."
    ),
)
def ai_models_sync_stats(
    context: AssetCheckExecutionContext, catalog: CatalogDatabase
) -> AssetCheckResult:
    with catalog.engine().connect() as connection:
        active, inactive = catalog_stats(connection, SOURCE)
        last_run = last_successful_sync(connection, SOURCE)
    last_sync = iso_utc(last_run.finished_at) if last_run else None
    served = (last_run.total + last_run.failed) if last_run else 0
    failed_share = (last_run.failed / served) if served else 0.0
    problems = []
    if active == 0:
        problems.append("no active models in the catalog")
    if failed_share > catalog.max_failed_share:
        problems.append(
            f"the last sync skipped {last_run.failed} of {served} models "
            f"({failed_share:.1%} > {catalog.max_failed_share:.1%}, MODEL_SYNC_MAX_FAILED_SHARE)"
        )
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems) or "catalog has active models and a healthy last sync",
        metadata={
            "totalModels": active + inactive,
            "activeModels": active,
            "inactiveModels": inactive,
            "lastSyncDate": MetadataValue.text(last_sync or "never"),
            "lastRunFailedShare": MetadataValue.float(failed_share),
        },
    )


@asset_check(
    asset=ai_models,
    description=(
        "Change-feed health: fails while an event has failed delivery to a subscriber "
        "MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS times or more (it keeps being retried)."
    ),
)
def ai_models_webhook_deliveries(
    context: AssetCheckExecutionContext, catalog: CatalogDatabase, change_feed: ChangeFeed
) -> AssetCheckResult:
    if not change_feed.urls:
        return AssetCheckResult(passed=True, description="no webhook subscribers configured")
    engine = catalog.engine()
    failing, oldest = webhooks.failing_deliveries(engine, change_feed.alert_after_attempts)
    pending, _ = webhooks.failing_deliveries(engine, 0)
    return AssetCheckResult(
        passed=failing == 0,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{failing} event(s) failed delivery {change_feed.alert_after_attempts}+ times; "
            "see webhook_outbox.last_error"
            if failing
            else "every event was delivered or is being retried normally"
        ),
        metadata={
            "failing_deliveries": failing,
            "pending_deliveries": pending,
            "oldest_failing": MetadataValue.text(oldest.isoformat() if oldest else "none"),
        },
    )
