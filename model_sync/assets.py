"""Each source's three catalog assets — fetch → normalize → load — built by one factory.

Why one ``multi_asset`` per source, with the three assets computed in one step:

- *A materialization always means a checked catalog.* Materializing ``ai_models`` alone (the
  UI's button on that asset) fetches in the same run; it never re-applies a response an
  earlier run left on disk. Materializing ``gateway_models_raw`` alone fetches and archives the
  body; ``ai_models_frame`` alone also reads it (and says what it found) without writing.
- *No serialization between steps.* The response (tens of MB) and the frame of Decimals stay
  in memory: nothing is pickled to local disk, which also makes runs behave the same under
  run launchers that start each run in a fresh container.
- *Each source fails on its own:* one op per source, so a failing gateway never blocks or
  rolls back another (the job's steps are independent).
"""

import time
from collections.abc import Iterator, Sequence
from datetime import timedelta

from dagster import (
    AssetCheckKey,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Backoff,
    Config,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    multi_asset,
)
from pydantic import Field as PydanticField
from sqlalchemy.exc import SQLAlchemyError

from model_sync import reporting, service
from model_sync.gateway import FetchedBody, GatewayError
from model_sync.resources import CatalogDatabase, ChangeFeed, GatewayClient
from model_sync.sources.base import Source
from model_sync.store import archive
from model_sync.store.database import describe_database_error
from model_sync.store.sync import Acceptance, SyncBusy

GROUP = "model_catalog"
RAW = "gateway_models_raw"
FRAME = "ai_models_frame"
TABLE = "ai_models"
SOURCE_TAG = "model_sync/source"


def asset_key(source: str, name: str) -> AssetKey:
    return AssetKey([source, name])


def table_key(source: str) -> AssetKey:
    return asset_key(source, TABLE)


class CatalogSyncConfig(Config):
    """Run config of a source's sync: how an operator accepts a flagged price change.

    Both fields must be set; the run then records who accepted what, and why, in
    ``model_sync_runs`` (``accepted_by``, ``accept_reason``, ``anomalies``).
    """

    accepted_by: str = PydanticField(default="", description="Who accepts flagged changes.")
    accept_reason: str = PydanticField(default="", description="Why they are real.")


def _gateway_failure(error: GatewayError) -> Failure:
    return Failure(
        description=str(error),
        metadata={
            "failure_kind": "gateway",
            "url": error.url,
            "status": error.status if error.status is not None else "none",
            "body_preview": error.body_preview,
        },
        allow_retries=False,
    )


def _raw_metadata(fetched: FetchedBody, model_count: int | None) -> dict:
    url = fetched.url
    return {
        "model_count": model_count if model_count is not None else "not read",
        "bytes": fetched.byte_count,
        "fetch_ms": fetched.fetch_ms,
        "url": MetadataValue.url(url) if url.startswith("http") else MetadataValue.path(url),
        "sha256": fetched.sha256,
    }


def source_assets(
    source: Source, freshness_hours: float, peer_sources: Sequence[str] = ()
) -> AssetsDefinition:
    """The three assets of one source, materialized together or in any subset.

    ``peer_sources``: the other enabled sources, whose prices can corroborate an implausible
    move of this one and are compared with its prices.
    """
    name = source.name
    raw_key, frame_key, catalog_key = (asset_key(name, n) for n in (RAW, FRAME, TABLE))
    freshness = FreshnessPolicy.time_window(fail_window=timedelta(hours=freshness_hours))

    @multi_asset(
        name=f"{name}_catalog_sync",
        specs=[
            AssetSpec(
                raw_key,
                group_name=GROUP,
                kinds={"http", "json"},
                skippable=True,
                description=f"{source.title}: the model list exactly as served, with its sha256 "
                "(every distinct body is kept in response_archive).",
            ),
            AssetSpec(
                frame_key,
                deps=[raw_key],
                group_name=GROUP,
                kinds={"pandas"},
                skippable=True,
                description=f"{source.title}: one validated row per model — exact prices, "
                "tiers, capabilities — and the models that could not be read, with reasons.",
            ),
            AssetSpec(
                catalog_key,
                deps=[frame_key],
                group_name=GROUP,
                kinds={"postgres"},
                skippable=True,
                freshness_policy=freshness,
                metadata={"dagster/table_name": "public.ai_models", "source": name},
                description=f"{source.title}'s rows of ai_models: upserted by (source, "
                "model_id) in one transaction; models no longer served are deactivated, "
                "returning ones reactivated, unreadable ones kept and marked stale. Also "
                "writes the history, the change report and the webhook outbox.",
            ),
        ],
        can_subset=True,
        op_tags={SOURCE_TAG: name},
        # A lost connection or a lock timeout is worth another try; refusals are not
        # (they raise Failure(allow_retries=False)).
        retry_policy=RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL),
    )
    def catalog_sync(
        context: AssetExecutionContext,
        config: CatalogSyncConfig,
        gateways: GatewayClient,
        catalog: CatalogDatabase,
        change_feed: ChangeFeed,
    ) -> Iterator[MaterializeResult]:
        selected = context.selected_asset_keys
        fetcher = gateways.fetcher(name)
        context.log.info(f"Fetching models from: {fetcher.url}")
        try:
            fetched = fetcher.fetch()
        except GatewayError as error:
            raise _gateway_failure(error) from None
        assert isinstance(fetched, FetchedBody)  # an unconditional GET is never a 304
        engine = _engine(catalog)

        if catalog_key not in selected:
            yield from _without_load(context, source, engine, fetched, raw_key, frame_key)
            return

        acceptance = _acceptance(config)
        clock = time.monotonic()
        try:
            outcome = service.sync_response(
                engine,
                source,
                fetched,
                run_id=context.run.run_id,
                policy=catalog.policy,
                acceptance=acceptance,
                webhook_urls=change_feed.subscribers,
                peer_sources=peer_sources,
            )
        except GatewayError as error:
            raise _gateway_failure(error) from None
        except SyncBusy as busy:
            context.log.warning(str(busy))
            return
        except service.SyncFailed as error:
            raise Failure(
                description=f"AI Models sync failed: {error}",
                metadata={"failure_kind": "refused" if error.refused else "database"},
                allow_retries=not error.refused,
            ) from None
        except SQLAlchemyError as error:
            raise Failure(
                description=f"cannot reach the catalog database: {describe_database_error(error)}",
                metadata={"failure_kind": "database"},
                allow_retries=True,
            ) from None

        models = outcome.models
        if raw_key in selected:
            yield MaterializeResult(
                asset_key=raw_key,
                metadata=_raw_metadata(fetched, models.served if models else None),
            )
        if models is not None:
            context.log.info(f"Successfully fetched {models.served} models from {source.title}")
        for skipped in outcome.result.skipped if outcome.result else []:
            context.log.warning(f"Skipping model {skipped.label()}: {skipped.reason}")
        if frame_key in selected:
            yield MaterializeResult(
                asset_key=frame_key,
                metadata=reporting.frame_metadata(models)
                if models is not None
                else {"unchanged_body": True},
            )
        duration_ms = round((time.monotonic() - clock) * 1000)
        yield _report_sync(
            context, outcome, change_feed, engine, catalog_key, acceptance, duration_ms
        )

    return catalog_sync


def _engine(catalog: CatalogDatabase):
    try:
        return catalog.engine()
    except (SQLAlchemyError, OSError) as error:
        raise Failure(
            description=f"cannot reach the catalog database: {describe_database_error(error)}",
            metadata={"failure_kind": "database"},
            allow_retries=True,
        ) from None


def _acceptance(config: CatalogSyncConfig) -> Acceptance | None:
    accepted_by, reason = config.accepted_by.strip(), config.accept_reason.strip()
    if bool(accepted_by) != bool(reason):
        raise Failure(
            description="to accept flagged changes set both accepted_by and accept_reason",
            metadata={"failure_kind": "config"},
            allow_retries=False,
        )
    return Acceptance(accepted_by, reason) if accepted_by else None


def _without_load(context, source, engine, fetched, raw_key, frame_key):
    """A subset without ``ai_models``: archive the body (the raw asset), read it (the frame
    asset), write nothing to the catalog."""
    try:
        archive.archive_response(engine, source.name, fetched)
    except SQLAlchemyError as error:
        context.log.warning(f"could not archive the body: {describe_database_error(error)}")
    models = None
    if frame_key in context.selected_asset_keys:
        try:
            models = service.read_response(source, fetched)
        except GatewayError as error:
            raise _gateway_failure(error) from None
    if raw_key in context.selected_asset_keys:
        yield MaterializeResult(
            asset_key=raw_key, metadata=_raw_metadata(fetched, models.served if models else None)
        )
    if models is not None:
        for problem in [*models.broken, *models.skipped]:
            context.log.warning(f"Skipping model {problem.label()}: {problem.reason}")
        yield MaterializeResult(asset_key=frame_key, metadata=reporting.frame_metadata(models))


def _report_sync(
    context,
    outcome: service.SyncOutcome,
    change_feed,
    engine,
    catalog_key,
    acceptance,
    duration_ms: int,
):
    """Log the old module's lines and build the catalog asset's materialization."""
    counts, result = outcome.counts, outcome.result
    if result is not None:
        for verb, model_ids in (
            ("Created", result.created),
            ("Updated", result.updated),
            ("Reactivated", result.reactivated),
        ):
            if model_ids:
                context.log.debug(reporting.model_lines(verb, model_ids, result.sync_id))
        for finding in result.warnings:
            context.log.warning(f"Price warning: {finding.describe()}")
        for finding in result.accepted:
            context.log.warning(
                f"Accepted by {acceptance.accepted_by} ({acceptance.reason}): {finding.describe()}"
            )
        for accepted in result.corroborated:
            context.log.warning(
                f"Accepted, corroborated by {accepted['corroborated_by']} "
                f"({accepted['their_price']}): {accepted['model_id']} {accepted['field']}: "
                f"{accepted['old']} → {accepted['new']} ({accepted['reason']})"
            )
        for stale in result.stale_models:
            context.log.warning(
                f"Stale model {stale['model_id']} (since {stale['since']}), kept with its last "
                f"valid values: {stale['reason']}"
            )
    for line in outcome.drift.lines() if outcome.drift else []:
        context.log.warning(f"Schema drift in {outcome.source.name}: {line}")
    if counts.deactivated:
        context.log.info(f"Deactivated {counts.deactivated} models that are no longer available")
    if outcome.unchanged_body:
        context.log.info(
            f"Response unchanged since the last sync (sha256 {outcome.fetched.sha256[:12]}…): "
            "verified, nothing to write"
        )
    context.log.info(f"AI Models sync completed successfully in {duration_ms} ms")
    context.log.info(
        f"Stats: total={counts.total}, created={counts.created}, updated={counts.updated}, "
        f"unchanged={counts.unchanged}, deactivated={counts.deactivated}, "
        f"reactivated={counts.reactivated}, failed={counts.failed}, stale={counts.stale}"
    )
    context.log.info(
        f"Database Stats: {outcome.active_models} active models, "
        f"{outcome.inactive_models} inactive models"
    )
    # Delivery is best effort: the catalog is committed, and the outbox keeps what fails.
    delivery = change_feed.deliver(engine)
    for error in delivery.errors:
        context.log.warning(f"Webhook delivery failed, will retry: {error}")
    change_counts = result.change_counts if result else {}
    metadata = {
        **counts.as_dict(),
        **{
            key: change_counts.get(change, 0)
            for change, key in reporting.CHANGE_METADATA_KEYS.items()
        },
        "unchanged_body": outcome.unchanged_body,
        "versions_opened": result.versions_opened if result else 0,
        "price_warnings": len(result.warnings) if result else 0,
        "accepted_anomalies": len(result.accepted) if result else 0,
        "corroborated_anomalies": len(result.corroborated) if result else 0,
        "price_disagreements": len(outcome.disagreements),
        "webhook_events": result.webhook_events if result else 0,
        "webhooks_delivered": delivery.delivered,
        "webhooks_failed": delivery.failed,
        "sync_id": outcome.sync_id,
        "active_models": outcome.active_models,
        "inactive_models": outcome.inactive_models,
        "dagster/row_count": outcome.active_models + outcome.inactive_models,
        "duration_ms": duration_ms,
        # Where the step's time went (docs/performance.md reads these).
        "fetch_ms": outcome.fetched.fetch_ms,
        "archive_ms": outcome.archive_ms,
        "transform_ms": outcome.transform_ms,
        "load_ms": outcome.load_ms,
        "body_sha256": outcome.fetched.sha256,
        **reporting.drift_metadata(outcome.drift),
    }
    if result is not None:
        metadata["change_report"] = MetadataValue.md(
            reporting.changes_markdown(result.change_counts, result.changes_preview, result.sync_id)
        )
        metadata["changes"] = MetadataValue.md(
            "\n\n".join(
                reporting.capped_markdown(title, ids)
                for title, ids in (
                    ("Created", result.created),
                    ("Updated", result.updated),
                    ("Reactivated", result.reactivated),
                    ("Deactivated", result.deactivated),
                )
            )
        )
        metadata["price_disagreement_table"] = MetadataValue.md(
            reporting.table_markdown(
                outcome.disagreements, ["canonical_model_id", "price_field", "spread", "prices"]
            )
        )
        metadata["stale_models"] = MetadataValue.md(
            reporting.table_markdown(result.stale_models, ["model_id", "since", "reason"])
        )
    return MaterializeResult(asset_key=catalog_key, metadata=metadata)


def check_key(source: str, check_name: str) -> AssetCheckKey:
    return AssetCheckKey(table_key(source), check_name)
