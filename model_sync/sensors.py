"""The webhook delivery sensor: retries the change feed's outbox between syncs."""

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from model_sync import webhooks
from model_sync.resources import CatalogDatabase, ChangeFeed

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
        if not (change_feed.urls and change_feed.secret):
            return SkipReason("no webhook subscribers configured")
        engine = catalog.engine()
        report = change_feed.deliver(engine)
        for error in report.errors:
            context.log.warning(f"webhook delivery failed, will retry: {error}")
        failing, oldest = webhooks.failing_deliveries(engine, change_feed.alert_after_attempts)
        if failing:
            raise WebhookDeliveriesFailing(
                f"{failing} change-feed event(s) failed delivery "
                f"{change_feed.alert_after_attempts}+ times (oldest from {oldest}); they are "
                "still retried — see webhook_outbox.last_error"
            )
        return SkipReason(f"delivered {report.delivered}, {report.failed} to retry later")

    return _sensor
