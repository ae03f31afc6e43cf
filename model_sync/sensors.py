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
        if not change_feed.subscribers:
            return SkipReason("no webhook subscribers configured")
        # The outbox is written by syncs, which migrate; a sensor only reads and updates it.
        engine = catalog.reader()
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
