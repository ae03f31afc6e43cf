"""The three catalog assets: fetch → normalize → load. Thin: the work is in plain modules."""

import time
from datetime import UTC, datetime

import pandas as pd
from dagster import (
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from model_sync.gateway import GatewayError, GatewayResponse
from model_sync.resources import CatalogDatabase, GatewayClient
from model_sync.store.sync import SyncRefused, SyncRequest, record_failed_run, sync_catalog
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
        context.log.warning(f"Skipping model {skipped.label()}: {skipped.reason}")
    frame = catalog.frame
    # Provenance travels with the frame so the load can record it in model_sync_runs.
    frame.attrs.update(
        source=SOURCE,
        source_url=gateway_models_raw.url,
        body_sha256=gateway_models_raw.sha256,
        fetched_at=gateway_models_raw.fetched_at.isoformat(),
        skipped=[
            {"index": s.index, "model_id": s.model_id, "reason": s.reason} for s in catalog.skipped
        ],
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


@asset(
    group_name=GROUP,
    kinds={"postgres"},
    description=(
        "The ai_models table in Postgres: upserted by (source, model_id) in one transaction; "
        "models missing from the response are deactivated, returning ones reactivated."
    ),
    metadata={"dagster/table_name": "public.ai_models"},
)
def ai_models(
    context: AssetExecutionContext, ai_models_frame: pd.DataFrame, catalog: CatalogDatabase
) -> MaterializeResult:
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
        lock_timeout_seconds=catalog.lock_timeout_seconds,
        statement_timeout_seconds=catalog.statement_timeout_seconds,
    )
    try:
        engine = catalog.engine()
    except (SQLAlchemyError, OSError) as error:
        raise Failure(
            description=f"cannot reach the catalog database: {_short_error(error)}",
            allow_retries=True,
        ) from None
    try:
        result = sync_catalog(engine, request, started_at)
    except (SyncRefused, SQLAlchemyError) as error:
        message = str(error) if isinstance(error, SyncRefused) else _short_error(error)
        try:
            record_failed_run(engine, request, started_at, message)
        except SQLAlchemyError as record_error:
            context.log.warning(f"could not record the failed run: {_short_error(record_error)}")
        raise Failure(
            description=f"AI Models sync failed: {message}",
            allow_retries=not isinstance(error, SyncRefused),
        ) from None

    counts = result.counts
    for model_id in result.created:
        context.log.debug(f"Created model: {model_id}")
    for model_id in result.updated:
        context.log.debug(f"Updated model: {model_id}")
    for model_id in result.reactivated:
        context.log.debug(f"Reactivated model: {model_id}")
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
    return MaterializeResult(
        metadata={
            **counts.as_dict(),
            "active_models": result.active_models,
            "inactive_models": result.inactive_models,
            "dagster/row_count": result.active_models + result.inactive_models,
            "duration_ms": duration_ms,
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


def _short_error(error: BaseException) -> str:
    """The driver's one-line reason, without SQLAlchemy's statement dump and links."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        return f"{type(error.orig).__name__}: {str(error.orig).strip().splitlines()[0]}"
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"
