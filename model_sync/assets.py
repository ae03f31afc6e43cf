"""The three catalog assets: fetch → normalize → load. Thin: the work is in plain modules."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
from dagster import (
    AssetExecutionContext,
    Backoff,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)
from pydantic import Field as PydanticField
from sqlalchemy.exc import SQLAlchemyError

from model_sync.gateway import GatewayError, GatewayResponse
from model_sync.resources import CatalogDatabase, ChangeFeed, GatewayClient
from model_sync.store.database import describe_database_error
from model_sync.store.sync import (
    SyncBusy,
    SyncRefused,
    SyncRequest,
    SyncResult,
    record_failed_run,
    sync_catalog,
)
from model_sync.transform import normalize_models

GROUP = "model_catalog"
SOURCE = "vercel"
# Lists in metadata are capped: a first sync creates hundreds of models.
METADATA_LIST_CAP = 50


def _capped_markdown(title: str, lines: list[str]) -> str:
    shown = [f"- `{line}`" for line in lines[:METADATA_LIST_CAP]]
    if len(lines) > METADATA_LIST_CAP:
        shown.append(f"- … and {len(lines) - METADATA_LIST_CAP} more")
    return f"**{title}** ({len(lines)})\n\n" + ("\n".join(shown) if shown else "none")


@asset(
    group_name=GROUP,
    kinds={"http", "json"},
    description="The gateway's /v1/models list exactly as served, with its sha256.",
)
def gateway_models_raw(context: AssetExecutionContext, gateway: GatewayClient) -> MaterializeResult:
    context.log.info(f"Fetching models from: {gateway.url}")
    try:
        response = gateway.fetch()
    except GatewayError as error:
        raise Failure(
            description=str(error),
            metadata={
                "failure_kind": "gateway",
                "url": error.url,
                "status": error.status if error.status is not None else "none",
                "body_preview": error.body_preview,
            },
            allow_retries=False,
        ) from None
    context.log.info(f"Successfully fetched {len(response.models)} models from AI Gateway")
    return MaterializeResult(
        value=response,
        metadata={
            "model_count": len(response.models),
            "bytes": response.byte_count,
            "fetch_ms": response.fetch_ms,
            "url": MetadataValue.url(response.url)
            if response.url.startswith("http")
            else MetadataValue.path(response.url),
            "sha256": response.sha256,
        },
    )


@asset(
    group_name=GROUP,
    kinds={"pandas"},
    description="One validated row per model: exact prices, tiers, capabilities, cost bucket.",
)
def ai_models_frame(
    context: AssetExecutionContext, gateway_models_raw: GatewayResponse
) -> MaterializeResult:
    catalog = normalize_models(gateway_models_raw.models, source=SOURCE)
    for skipped in catalog.skipped:
        record = skipped.as_record()
        context.log.warning(f"Skipping model {skipped.label()}: {record['reason']}")
    frame = catalog.frame
    # Provenance travels with the frame so the load can record it in model_sync_runs.
    frame.attrs.update(
        source=SOURCE,
        source_url=gateway_models_raw.url,
        body_sha256=gateway_models_raw.sha256,
        fetched_at=gateway_models_raw.fetched_at.isoformat(),
        skipped=[skipped.as_record() for skipped in catalog.skipped],
    )
    skipped_table = pd.DataFrame(frame.attrs["skipped"], columns=["index", "model_id", "reason"])
    return MaterializeResult(
        value=frame,
        metadata={
            "valid": len(frame),
            "failed": len(catalog.skipped),
            "skipped_models": MetadataValue.md(
                skipped_table.head(METADATA_LIST_CAP).to_markdown(index=False)
                if len(skipped_table)
                else "none"
            ),
            "cost_buckets": MetadataValue.json(
                frame["cost_bucket"].fillna("none").value_counts().to_dict()
            ),
            "dagster/row_count": len(frame),
        },
    )


class CatalogSyncConfig(Config):
    """Run config of ``ai_models``: how an operator accepts a flagged price change.

    Both fields must be set; the run then records who accepted what, and why, in
    ``model_sync_runs`` (``accepted_by``, ``accept_reason``, ``anomalies``).
    """

    accepted_by: str = PydanticField(default="", description="Who accepts flagged changes.")
    accept_reason: str = PydanticField(default="", description="Why they are real.")


# Each Dagster log call is an event stored in the run's event log (~10 ms each here): one per
# model would make a first load of 100,000 models take hours and flood the UI. So each kind
# of change is one debug message of "<Verb> model: <id>" lines, capped.
MODEL_LOG_LINES_CAP = 1_000


def _model_lines(verb: str, model_ids: list[str], sync_id: int) -> str:
    lines = [f"{verb} model: {model_id}" for model_id in model_ids[:MODEL_LOG_LINES_CAP]]
    if len(model_ids) > MODEL_LOG_LINES_CAP:
        lines.append(
            f"… and {len(model_ids) - MODEL_LOG_LINES_CAP} more "
            f"(SELECT * FROM ai_model_changes WHERE sync_id = {sync_id})"
        )
    return "\n".join(lines)


CHANGE_METADATA_KEYS = {
    "created": "created_models",
    "deactivated": "deactivated_models",
    "reactivated": "reactivated_models",
    "price_changed": "price_changes",
    "tiers_changed": "tier_changes",
    "capabilities_changed": "capability_changes",
    "limits_changed": "limit_changes",
    "deprecated": "deprecations",
}


def _changes_markdown(result: SyncResult) -> str:
    """The run's change report as a table, capped; the rest is in ai_model_changes."""
    total = sum(result.change_counts.values())
    if not total:
        return "No changes."
    lines = ["| model | change | field | old | new | relative |", "|---|---|---|---|---|---|"]
    for change in result.changes_preview[:METADATA_LIST_CAP]:
        cells = [
            change["model_id"],
            change["change_type"],
            change["field"] or "",
            _cell(change["old_value"]),
            _cell(change["new_value"]),
            "" if change["relative_change"] is None else f"{change['relative_change']:+.2%}",
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    shown = min(total, METADATA_LIST_CAP, len(result.changes_preview))
    if total > shown:
        lines.append(
            f"\n… and {total - shown} more (SELECT * FROM ai_model_changes "
            f"WHERE sync_id = {result.sync_id})"
        )
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "…"


@asset(
    group_name=GROUP,
    kinds={"postgres"},
    description=(
        "The ai_models table in Postgres: upserted by (source, model_id) in one transaction; "
        "models missing from the response are deactivated, returning ones reactivated. Also "
        "writes the price/capability history, the per-run change report and the webhook outbox."
    ),
    metadata={"dagster/table_name": "public.ai_models"},
    # A lost connection or a lock timeout is worth another try; refusals are not
    # (they raise Failure(allow_retries=False)).
    retry_policy=RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL),
    # With MODEL_SYNC_CONCURRENT_SYNC=skip a run that finds another sync running ends without
    # materializing, instead of failing.
    output_required=False,
)
def ai_models(
    context: AssetExecutionContext,
    config: CatalogSyncConfig,
    ai_models_frame: pd.DataFrame,
    catalog: CatalogDatabase,
    change_feed: ChangeFeed,
) -> Iterator[MaterializeResult]:
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    attrs = ai_models_frame.attrs
    request = SyncRequest(
        frame=ai_models_frame,
        source=attrs.get("source", SOURCE),
        run_id=context.run.run_id,
        source_url=attrs.get("source_url"),
        body_sha256=attrs.get("body_sha256"),
        skipped=attrs.get("skipped", []),
        max_deactivation_share=catalog.max_deactivation_share,
        anomaly_fail_factor=Decimal(str(catalog.anomaly_fail_factor)),
        anomaly_warn_factor=Decimal(str(catalog.anomaly_warn_factor)),
        accepted_by=config.accepted_by.strip() or None,
        accept_reason=config.accept_reason.strip() or None,
        webhook_urls=tuple(change_feed.urls) if change_feed.secret else (),
        on_busy=catalog.concurrent_sync,
        lock_timeout_seconds=catalog.lock_timeout_seconds,
        statement_timeout_seconds=catalog.statement_timeout_seconds,
    )
    if bool(request.accepted_by) != bool(request.accept_reason):
        raise Failure(
            description="to accept flagged changes set both accepted_by and accept_reason",
            metadata={"failure_kind": "config"},
            allow_retries=False,
        )
    try:
        engine = catalog.engine()
    except (SQLAlchemyError, OSError) as error:
        raise Failure(
            description=f"cannot reach the catalog database: {describe_database_error(error)}",
            metadata={"failure_kind": "database"},
            allow_retries=True,
        ) from None
    try:
        result = sync_catalog(engine, request, started_at)
    except SyncBusy as busy:
        context.log.warning(str(busy))
        return
    except (SyncRefused, SQLAlchemyError) as error:
        message = str(error) if isinstance(error, SyncRefused) else describe_database_error(error)
        try:
            record_failed_run(engine, request, started_at, message)
        except SQLAlchemyError as record_error:
            context.log.warning(
                f"could not record the failed run: {describe_database_error(record_error)}"
            )
        raise Failure(
            description=f"AI Models sync failed: {message}",
            metadata={"failure_kind": "refused" if isinstance(error, SyncRefused) else "database"},
            allow_retries=not isinstance(error, SyncRefused),
        ) from None

    counts = result.counts
    for verb, model_ids in (
        ("Created", result.created),
        ("Updated", result.updated),
        ("Reactivated", result.reactivated),
    ):
        if model_ids:
            context.log.debug(_model_lines(verb, model_ids, result.sync_id))
    for finding in result.warnings:
        context.log.warning(f"Price warning: {finding.describe()}")
    for finding in result.accepted:
        context.log.warning(
            f"Accepted by {request.accepted_by} ({request.accept_reason}): {finding.describe()}"
        )
    if counts.deactivated:
        context.log.info(f"Deactivated {counts.deactivated} models that are no longer available")
    duration_ms = round((time.monotonic() - clock) * 1000)
    context.log.info(f"AI Models sync completed successfully in {duration_ms} ms")
    context.log.info(
        f"Stats: total={counts.total}, created={counts.created}, updated={counts.updated}, "
        f"unchanged={counts.unchanged}, deactivated={counts.deactivated}, "
        f"reactivated={counts.reactivated}, failed={counts.failed}"
    )
    context.log.info(
        f"Database Stats: {result.active_models} active models, "
        f"{result.inactive_models} inactive models"
    )
    # Delivery is best effort: the catalog is committed, and the outbox keeps what fails.
    delivery = change_feed.deliver(engine)
    for error in delivery.errors:
        context.log.warning(f"Webhook delivery failed, will retry: {error}")
    yield MaterializeResult(
        metadata={
            **counts.as_dict(),
            **{
                key: result.change_counts.get(change, 0)
                for change, key in CHANGE_METADATA_KEYS.items()
            },
            "versions_opened": result.versions_opened,
            "price_warnings": len(result.warnings),
            "accepted_anomalies": len(result.accepted),
            "webhook_events": result.webhook_events,
            "webhooks_delivered": delivery.delivered,
            "webhooks_failed": delivery.failed,
            "sync_id": result.sync_id,
            "active_models": result.active_models,
            "inactive_models": result.inactive_models,
            "dagster/row_count": result.active_models + result.inactive_models,
            "duration_ms": duration_ms,
            "change_report": MetadataValue.md(_changes_markdown(result)),
            "changes": MetadataValue.md(
                "\n\n".join(
                    _capped_markdown(title, ids)
                    for title, ids in (
                        ("Created", result.created),
                        ("Updated", result.updated),
                        ("Reactivated", result.reactivated),
                        ("Deactivated", result.deactivated),
                    )
                )
            ),
        }
    )
