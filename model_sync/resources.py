"""Dagster resources: each source's gateway client, the catalog database, the change feed.

Thin ``ConfigurableResource`` wrappers around the typed settings groups (handed down whole,
so the UI's launchpad shows — and can override per run — every setting), while the work lives
in plain modules (``gateway``, ``store``, ``webhooks``) that the API, the CLI and the tests
call directly. Values that come from the environment are bound as ``EnvVar`` references, so
the UI shows the variable's name, never a secret.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource, EnvVar
from pydantic import Field
from sqlalchemy import Engine

from model_sync import webhooks
from model_sync.gateway import FetchedBody, GatewayFetcher, NotModified, Validators
from model_sync.settings import HttpSettings, Settings, SyncPolicy, WebhookSettings
from model_sync.store import database


def from_env(name: str, value):
    """A value given by an environment variable stays a reference (not a value) in the UI.

    Only when the setting really came from that variable: settings built in code (tests, the
    API) must never be silently replaced by whatever the environment happens to hold.
    """
    return EnvVar(name) if value and os.environ.get(name, "").strip() == value else value


class GatewayClient(ConfigurableResource):
    """Reads each enabled source's model list over HTTP, or from a saved response file.

    A local path or ``file://`` URL serves a saved response: for air-gapped deployments, for
    trying the project offline, and as the snapshot-backed twin in tests.
    """

    urls: dict[str, str] = Field(description="Model list URL (or saved file) per source.")
    http: HttpSettings = Field(default_factory=HttpSettings)

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayClient:
        return cls(urls={s.name: s.url for s in settings.sources}, http=settings.http)

    def fetcher(self, source: str) -> GatewayFetcher:
        return GatewayFetcher(url=self.urls[source], http=self.http)

    def fetch(self, source: str, validators: Validators | None = None) -> FetchedBody | NotModified:
        return self.fetcher(source).fetch(validators)


class CatalogDatabase(ConfigurableResource):
    """The Postgres database that holds the catalog, and the rules every sync runs under.

    With no ``database_url`` it starts (or reuses) an embedded PostgreSQL under ``data_dir``.
    Writers get the schema migrated to head once per process; readers never migrate.
    """

    database_url: str | None = Field(
        default=None, description="postgresql:// URL; unset means the embedded server."
    )
    data_dir: str = Field(description="Embedded server's data folder.")
    connect_timeout_seconds: int = Field(description="Connect timeout of every connection.")
    policy: SyncPolicy = Field(default_factory=SyncPolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> CatalogDatabase:
        return cls(
            database_url=from_env("MODEL_SYNC_DATABASE_URL", settings.database_url),
            data_dir=str(settings.embedded_data_dir()),
            connect_timeout_seconds=settings.db_connect_timeout_seconds,
            policy=settings.sync,
        )

    def url(self) -> str:
        return database.resolve_database_url(self.database_url, self.data_dir)

    def engine(self) -> Engine:
        """The pooled engine of a writer, with the schema at head."""
        return database.migrated_engine(self.url(), self.connect_timeout_seconds)

    def reader(self) -> Engine:
        """The pooled engine of a reader (checks, sensors): never migrates."""
        return database.engine_for(self.url(), self.connect_timeout_seconds)


class ChangeFeed(ConfigurableResource):
    """Webhook subscribers of the change feed, and how deliveries are retried."""

    settings: WebhookSettings = Field(default_factory=WebhookSettings)

    @classmethod
    def from_settings(cls, settings: Settings) -> ChangeFeed:
        webhook = settings.webhooks
        secret = from_env("MODEL_SYNC_WEBHOOK_SECRET", webhook.secret)
        return cls(settings=webhook.model_copy(update={"secret": secret}))

    @property
    def subscribers(self) -> list[str]:
        """Where events go: none without a signing secret."""
        return list(self.settings.urls) if self.settings.secret else []

    def deliver(self, engine: Engine) -> webhooks.DeliveryReport:
        if not self.subscribers:
            return webhooks.DeliveryReport()
        return webhooks.deliver_pending(engine, self.settings)
