"""Sensors: change detection per source, and the webhook delivery retries.

Why sensors (not an observable source asset with declarative automation): a change must
launch a run of exactly one source's assets with a run key tied to the body it saw (so one
body is synced once), a poll failure must be visible where the poll lives, and an unchanged
poll must write nothing — a sensor's cursor, run keys and skip reasons are Dagster's own tools
for each of those, and its minimum interval is the poll interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from model_sync import webhooks
from model_sync.gateway import GatewayFetcher, NotModified, Validators
from model_sync.resources import CatalogDatabase, ChangeFeed, GatewayClient
from model_sync.schedules import ai_models_sync_job, source_run_request
from model_sync.service import transform_version
from model_sync.sources import get_source
from model_sync.store.runs import catalog_created, last_successful_sync

SENSOR_NAME = "webhook_delivery_sensor"


class WebhookDeliveriesFailing(RuntimeError):
    """Raised so the sensor's tick turns red while deliveries keep failing."""


def webhook_delivery_sensor(enabled: bool, interval_seconds: int = 60) -> SensorDefinition:
    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING if enabled else DefaultSensorStatus.STOPPED,
        description="Delivers due change-feed events; red while an event keeps failing.",
    )
    def _sensor(
        context: SensorEvaluationContext, catalog: CatalogDatabase, change_feed: ChangeFeed
    ):
        if not change_feed.subscribers:
            return SkipReason("no webhook subscribers configured")
        # The outbox is written by syncs, which migrate; a sensor only reads and updates it.
        engine = catalog.reader()
        with engine.connect() as connection:
            if not catalog_created(connection):
                return SkipReason("nothing to deliver: the catalog has not been synced yet")
        report = change_feed.deliver(engine)
        for error in report.errors:
            context.log.warning(f"webhook delivery failed, will retry: {error}")
        alert_after = change_feed.settings.alert_after_attempts
        failing, oldest = webhooks.failing_deliveries(engine, alert_after)
        if failing:
            raise WebhookDeliveriesFailing(
                f"{failing} change-feed event(s) failed delivery {alert_after}+ times (oldest "
                f"from {oldest}); they are still retried — see webhook_outbox.last_error"
            )
        more = " (time budget spent; the rest next tick)" if report.out_of_time else ""
        return SkipReason(f"delivered {report.delivered}, {report.failed} to retry later{more}")

    return _sensor


# --- change detection: fresh within a minute, at almost no cost while nothing changes --------

CHANGE_SENSOR_SUFFIX = "_change_sensor"
# A poll is one request inside one sensor tick (Dagster gives a tick 60 s): one retry, and at
# most 20 s per attempt, whatever the sync's own HTTP settings.
POLL_RETRIES = 1
POLL_TIMEOUT_SECONDS = 20.0


def change_sensor_name(source: str) -> str:
    return f"{source}{CHANGE_SENSOR_SUFFIX}"


@dataclass(frozen=True)
class PollState:
    """The sensor's cursor: the validators and hash of the last body it saw."""

    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None

    @classmethod
    def parse(cls, cursor: str | None) -> PollState:
        try:
            return cls(**json.loads(cursor)) if cursor else cls()
        except (TypeError, ValueError):
            return cls()

    def dump(self) -> str:
        return json.dumps(
            {"etag": self.etag, "last_modified": self.last_modified, "sha256": self.sha256}
        )


def change_sensor(source: str, interval_seconds: int, enabled: bool) -> SensorDefinition:
    """Polls one source; only a body that differs from the last one synced launches a run.

    A conditional GET when the server gave validators (a 304 is "unchanged", no body moves),
    else the body's sha256 against the last successful sync of the source (read by the same
    transform). The run key is source + body hash + transform version, so one body is synced
    once, whatever the sensor, the schedule or anyone else does. A failing poll turns the tick
    red and launches nothing.
    """

    @sensor(
        name=change_sensor_name(source),
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING if enabled else DefaultSensorStatus.STOPPED,
        job=ai_models_sync_job,
        description=f"Polls {source} every {interval_seconds} s (MODEL_SYNC_POLL_SECONDS) and "
        "syncs it when its model list changed.",
    )
    def _sensor(
        context: SensorEvaluationContext, gateways: GatewayClient, catalog: CatalogDatabase
    ) -> SensorResult | SkipReason:
        state = PollState.parse(context.cursor)
        http = gateways.http.model_copy(
            update={
                "max_retries": min(gateways.http.max_retries, POLL_RETRIES),
                "timeout_seconds": min(gateways.http.timeout_seconds, POLL_TIMEOUT_SECONDS),
            }
        )
        fetcher = GatewayFetcher(url=gateways.urls[source], http=http)
        fetched = fetcher.fetch(Validators(state.etag, state.last_modified))
        if isinstance(fetched, NotModified):
            return SkipReason(f"unchanged: {fetched.url} answered 304 Not Modified")
        polled = PollState(fetched.etag, fetched.last_modified, fetched.sha256)
        with catalog.reader().connect() as connection:
            # A fresh database (no schema until the first sync migrates it) is "never synced":
            # the first poll launches the first sync.
            last = last_successful_sync(connection, source) if catalog_created(connection) else None
        version = transform_version(get_source(source))
        if last is not None and (last.body_sha256, last.transform_version) == (
            fetched.sha256,
            version,
        ):
            context.update_cursor(polled.dump())
            return SkipReason(
                f"unchanged: body sha256 {fetched.sha256[:12]}… was synced by sync #{last.id}"
            )
        run_key = f"{source}:{fetched.sha256}:{version}"
        return SensorResult(
            run_requests=[source_run_request(source, run_key, "change_sensor")],
            cursor=polled.dump(),
        )

    return _sensor
