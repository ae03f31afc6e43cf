"""Dagster resources: the gateway client and the catalog database.

Both are thin ``ConfigurableResource`` wrappers, so their settings show (and can be overridden
per run) in the Dagster UI's launchpad, while the work lives in plain modules
(``model_sync.gateway``, ``model_sync.store``) that tests and scripts call directly.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine

from model_sync import webhooks
from model_sync.gateway import GatewayFetcher, GatewayResponse
from model_sync.settings import DEFAULT_GATEWAY_URL
from model_sync.store import database, migrate


class GatewayClient(ConfigurableResource):
    """Reads a gateway's ``/v1/models`` list over HTTP, or from a saved response file.

    A local path or ``file://`` URL serves a saved response: for air-gapped deployments, for
    trying the project offline, and as the snapshot-backed twin in tests.
    """

    url: str = Field(default=DEFAULT_GATEWAY_URL, description="Model list URL or saved file.")
    timeout_seconds: float = Field(default=30.0, description="Per attempt, headers and body.")
    max_retries: int = Field(default=4, description="Retries on network errors, 429 and 5xx.")
    backoff_seconds: float = Field(default=1.0, description="Exponential backoff base.")
    max_body_bytes: int = Field(default=50 * 1024 * 1024, description="Larger bodies are refused.")

    def fetch(self) -> GatewayResponse:
        return GatewayFetcher(
            url=self.url,
            timeout_seconds=self.timeout_seconds,
            max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds,
            max_body_bytes=self.max_body_bytes,
        ).fetch()


class CatalogDatabase(ConfigurableResource):
    """The Postgres database that holds the catalog.

    With no ``database_url`` it starts (or reuses) an embedded PostgreSQL under ``data_dir``.
    The schema is migrated to the latest revision before the first write of each process.
    """

    database_url: str | None = Field(
        default=None, description="postgresql:// URL; unset means the embedded server."
    )
    data_dir: str = Field(default=".model_sync", description="Embedded server's data folder.")
    max_deactivation_share: float = Field(
        default=0.5, description="Refuse a sync that would deactivate more of the active models."
    )
    max_failed_share: float = Field(
        default=0.1, description="Stats check fails when more of the last run's models failed."
    )
    anomaly_fail_factor: float = Field(
        default=10.0, description="Refuse a price moving by more than this factor."
    )
    anomaly_warn_factor: float = Field(
        default=3.0, description="Warn about a price moving by more than this factor."
    )
    concurrent_sync: str = Field(
        default="wait", description="'wait' for a running sync of the source, or 'skip'."
    )
    lock_timeout_seconds: float = Field(default=30.0, description="Wait for locks at most this.")
    statement_timeout_seconds: float = Field(default=300.0, description="Per SQL statement.")

    def url(self) -> str:
        return database.resolve_database_url(self.database_url, self.data_dir)

    def engine(self) -> Engine:
        """The pooled engine, with the schema upgraded to head (a cheap no-op when current)."""
        engine = database.engine_for(self.url())
        migrate.upgrade(engine)
        return engine


class ChangeFeed(ConfigurableResource):
    """Webhook subscribers of the change feed, and how deliveries are retried."""

    urls: list[str] = Field(default_factory=list, description="Subscriber URLs.")
    secret: str | None = Field(default=None, description="HMAC-SHA256 signing secret.")
    timeout_seconds: float = Field(default=10.0, description="Per delivery attempt.")
    backoff_seconds: float = Field(default=30.0, description="First retry delay; doubles.")
    alert_after_attempts: int = Field(
        default=5, description="An undelivered event with this many failures turns checks red."
    )

    def deliver(self, engine: Engine) -> webhooks.DeliveryReport:
        if not self.secret:
            return webhooks.DeliveryReport()
        return webhooks.deliver_pending(
            engine,
            self.secret,
            timeout_seconds=self.timeout_seconds,
            backoff_base_seconds=self.backoff_seconds,
        )
