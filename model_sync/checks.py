"""Asset checks on each source's catalog: the stats the old module's users relied on, schema
drift, and the change feed's health.

Freshness is not a check here: each source's ``ai_models`` asset carries a
``FreshnessPolicy`` (see ``assets.py``), which Dagster evaluates itself. The checks read what
the syncs recorded, so each can also be run on its own from its asset-check page.
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from model_sync import reporting, webhooks
from model_sync.assets import table_key
from model_sync.drift import SchemaDrift
from model_sync.resources import CatalogDatabase, ChangeFeed
from model_sync.store.comparison import price_disagreements
from model_sync.store.runs import (
    catalog_created,
    catalog_stats,
    iso_utc,
    last_successful_sync,
    stale_models,
)

STATS_CHECK = "ai_models_sync_stats"
DRIFT_CHECK = "ai_models_schema_drift"
WEBHOOK_CHECK = "ai_models_webhook_deliveries"
AGREEMENT_CHECK = "ai_models_price_agreement"


def _not_synced_yet(
    catalog: CatalogDatabase, severity: AssetCheckSeverity
) -> AssetCheckResult | None:
    """The answer of a check run before the first sync of a fresh database (checks only read,
    so nothing has created the schema yet): a plain failure instead of a missing-table error."""
    with catalog.reader().connect() as connection:
        if catalog_created(connection):
            return None
    return AssetCheckResult(
        passed=False,
        severity=severity,
        description="the catalog has not been synced yet: materialize the source's assets",
    )


def source_checks(source: str, compared: bool = False) -> list[AssetChecksDefinition]:
    """The checks of one source's catalog asset; ``compared``: other sources are enabled, so
    its prices are compared with theirs."""
    asset = table_key(source)

    @asset_check(
        asset=asset,
        name=STATS_CHECK,
        description=(
            "Catalog stats (totalModels, activeModels, inactiveModels, lastSyncDate). Fails when "
            "no model is active, or when the last sync skipped more than the allowed share of "
            "models; warns while any served model is stale (kept with its last valid values)."
        ),
    )
    def sync_stats(
        context: AssetCheckExecutionContext, catalog: CatalogDatabase
    ) -> AssetCheckResult:
        if unsynced := _not_synced_yet(catalog, AssetCheckSeverity.ERROR):
            return unsynced
        with catalog.reader().connect() as connection:
            active, inactive = catalog_stats(connection, source)
            last_run = last_successful_sync(connection, source)
            stale = [s for s in stale_models(connection, source)]
        last_sync = iso_utc(last_run.finished_at) if last_run else None
        served = ((last_run.total or 0) + (last_run.failed or 0)) if last_run else 0
        failed = (last_run.failed or 0) if last_run else 0
        failed_share = failed / served if served else 0.0
        limit = catalog.policy.max_failed_share
        problems = []
        if active == 0:
            problems.append("no active models in the catalog")
        if failed_share > limit:
            problems.append(
                f"the last sync skipped {failed} of {served} models "
                f"({failed_share:.1%} > {limit:.1%}, MODEL_SYNC_MAX_FAILED_SHARE)"
            )
        if problems:
            severity, description = AssetCheckSeverity.ERROR, "; ".join(problems)
        elif stale:
            severity = AssetCheckSeverity.WARN
            description = (
                f"{len(stale)} served model(s) could not be read and keep their last valid "
                "values (ai_models.stale_reason)"
            )
        else:
            severity = AssetCheckSeverity.ERROR
            description = "catalog has active models and a healthy last sync"
        return AssetCheckResult(
            passed=not problems and not stale,
            severity=severity,
            description=description,
            metadata={
                "totalModels": active + inactive,
                "activeModels": active,
                "inactiveModels": inactive,
                "staleModels": len(stale),
                "lastSyncDate": MetadataValue.text(last_sync or "never"),
                "lastRunFailedShare": MetadataValue.float(failed_share),
                "stale_models": MetadataValue.md(
                    reporting.table_markdown(stale, ["model_id", "since", "reason"])
                ),
            },
        )

    @asset_check(
        asset=asset,
        name=DRIFT_CHECK,
        description=(
            "Warns when the last sync's response used key paths or value types the previous "
            "successful sync's did not (new, vanished, or changed type)."
        ),
    )
    def schema_drift(
        context: AssetCheckExecutionContext, catalog: CatalogDatabase
    ) -> AssetCheckResult:
        if unsynced := _not_synced_yet(catalog, AssetCheckSeverity.WARN):
            return unsynced
        with catalog.reader().connect() as connection:
            last_run = last_successful_sync(connection, source)
        drift = SchemaDrift.from_json(last_run.schema_drift if last_run else None)
        return AssetCheckResult(
            passed=not drift,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"{drift.count} path(s) drifted: " + "; ".join(drift.lines()[:5])
                if drift
                else "the response's shape matches the previous sync's"
            ),
            metadata=reporting.drift_metadata(drift),
        )

    @asset_check(
        asset=asset,
        name=WEBHOOK_CHECK,
        description=(
            "Change-feed health: fails while an event of this source has failed delivery "
            "MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS times or more (it keeps being retried)."
        ),
    )
    def webhook_deliveries(
        context: AssetCheckExecutionContext, catalog: CatalogDatabase, change_feed: ChangeFeed
    ) -> AssetCheckResult:
        if not change_feed.subscribers:
            return AssetCheckResult(passed=True, description="no webhook subscribers configured")
        if unsynced := _not_synced_yet(catalog, AssetCheckSeverity.ERROR):
            return unsynced
        engine = catalog.reader()
        alert_after = change_feed.settings.alert_after_attempts
        failing, oldest = webhooks.failing_deliveries(engine, alert_after, source)
        pending, _ = webhooks.failing_deliveries(engine, 0, source)
        return AssetCheckResult(
            passed=failing == 0,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"{failing} event(s) failed delivery {alert_after}+ times; "
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

    @asset_check(
        asset=asset,
        name=AGREEMENT_CHECK,
        description=(
            "Warns while this source and another enabled source disagree on a model's base "
            "price by more than MODEL_SYNC_PRICE_TOLERANCE (ai_model_price_comparison)."
        ),
    )
    def price_agreement(
        context: AssetCheckExecutionContext, catalog: CatalogDatabase
    ) -> AssetCheckResult:
        if unsynced := _not_synced_yet(catalog, AssetCheckSeverity.WARN):
            return unsynced
        with catalog.reader().begin() as connection:
            disagreements = price_disagreements(connection, source, catalog.policy.tolerance)
        return AssetCheckResult(
            passed=not disagreements,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"{len(disagreements)} price(s) differ from another source's by more than "
                f"{catalog.policy.price_tolerance:.2%}"
                if disagreements
                else "every compared price agrees within the tolerance"
            ),
            metadata={
                "price_disagreements": len(disagreements),
                "disagreements": MetadataValue.md(
                    reporting.table_markdown(
                        disagreements, ["canonical_model_id", "price_field", "spread", "prices"]
                    )
                ),
            },
        )

    checks = [sync_stats, schema_drift, webhook_deliveries]
    return [*checks, price_agreement] if compared else checks
