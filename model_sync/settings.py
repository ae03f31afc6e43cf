"""Every ``MODEL_SYNC_*`` environment variable, parsed once into one typed settings object.

Parsing happens when the code location (or the API, or the CLI) starts, so a typo in a
variable fails the load with a message naming the variable instead of surfacing hours later
in a scheduled run. Each setting is declared exactly once below — type, bounds, default,
meaning and the variable it comes from — and the groups are handed down whole: the Dagster
resources hold ``HttpSettings``, ``SyncPolicy`` and ``WebhookSettings`` as nested config (so
the UI's launchpad shows them), the sync receives its ``SyncPolicy``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from dagster import Config
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_CRON_SCHEDULE = "0 2 * * *"


class SettingsError(ValueError):
    """A ``MODEL_SYNC_*`` variable holds a value we cannot use."""


class ConcurrentSync(StrEnum):
    """What a sync does when another sync of the same source holds the lock."""

    WAIT = "wait"
    SKIP = "skip"


def _env(name: str, default: Any, description: str, **bounds: Any) -> Any:
    """A setting: its default, its meaning and the variable it is read from, declared once."""
    return Field(default, description=description, json_schema_extra={"env": name}, **bounds)


class HttpSettings(Config):
    """How a gateway's model list is fetched."""

    timeout_seconds: float = _env(
        "MODEL_SYNC_HTTP_TIMEOUT_SECONDS", 30.0, "Per attempt: connect, headers and body.",
        ge=0.1, le=3600,
    )  # fmt: skip
    max_retries: int = _env(
        "MODEL_SYNC_HTTP_MAX_RETRIES", 4, "Retries on network errors, 429 and 5xx.", ge=0, le=20
    )
    backoff_seconds: float = _env(
        "MODEL_SYNC_HTTP_BACKOFF_SECONDS", 1.0, "Exponential backoff base.", ge=0, le=300
    )
    max_body_bytes: int = _env(
        "MODEL_SYNC_MAX_BODY_BYTES", 50 * 1024 * 1024, "Larger responses are refused.", ge=1024
    )


class SyncPolicy(Config):
    """The guards and bounds every sync of the catalog runs under."""

    max_deactivation_share: float = _env(
        "MODEL_SYNC_MAX_DEACTIVATION_SHARE", 0.5,
        "Refuse a sync that would deactivate more than this share of the active models.",
        ge=0, le=1,
    )  # fmt: skip
    max_failed_share: float = _env(
        "MODEL_SYNC_MAX_FAILED_SHARE", 0.1,
        "The stats check fails when the last sync skipped more than this share of models.",
        ge=0, le=1,
    )  # fmt: skip
    anomaly_fail_factor: float = _env(
        "MODEL_SYNC_ANOMALY_FAIL_FACTOR", 10.0,
        "Refuse a price moving by more than this factor either way.", ge=1, le=1e6,
    )  # fmt: skip
    anomaly_warn_factor: float = _env(
        "MODEL_SYNC_ANOMALY_WARN_FACTOR", 3.0,
        "Warn about a price moving by more than this factor either way.", ge=1, le=1e6,
    )  # fmt: skip
    price_tolerance: float = _env(
        "MODEL_SYNC_PRICE_TOLERANCE", 0.005,
        "Sources agree on a price when their spread is at most this (0.005 = 0.5 %).",
        ge=0, le=10,
    )  # fmt: skip
    concurrent_sync: ConcurrentSync = _env(
        "MODEL_SYNC_CONCURRENT_SYNC", ConcurrentSync.WAIT,
        "'wait' for a running sync of the same source, or 'skip' this one.",
    )  # fmt: skip
    lock_timeout_seconds: float = _env(
        "MODEL_SYNC_LOCK_TIMEOUT_SECONDS", 30.0, "Wait for locks at most this long.",
        ge=0.1, le=3600,
    )  # fmt: skip
    statement_timeout_seconds: float = _env(
        "MODEL_SYNC_STATEMENT_TIMEOUT_SECONDS", 300.0, "Upper bound of one SQL statement.",
        ge=0.1,
    )  # fmt: skip

    @property
    def fail_factor(self) -> Decimal:
        return Decimal(str(self.anomaly_fail_factor))

    @property
    def warn_factor(self) -> Decimal:
        return Decimal(str(self.anomaly_warn_factor))

    @property
    def tolerance(self) -> Decimal:
        return Decimal(str(self.price_tolerance))


class WebhookSettings(Config):
    """The change feed's subscribers and how deliveries are retried."""

    urls: list[str] = _env("MODEL_SYNC_WEBHOOK_URLS", [], "Subscriber URLs.")
    secret: str | None = _env("MODEL_SYNC_WEBHOOK_SECRET", None, "HMAC-SHA256 signing key.")
    timeout_seconds: float = _env(
        "MODEL_SYNC_WEBHOOK_TIMEOUT_SECONDS", 10.0, "Per delivery attempt.", ge=0.1, le=300
    )
    backoff_seconds: float = _env(
        "MODEL_SYNC_WEBHOOK_BACKOFF_SECONDS", 30.0,
        "First retry delay of a failed delivery; doubles per failure, capped at 1 h.",
        ge=0, le=3600,
    )  # fmt: skip
    alert_after_attempts: int = _env(
        "MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS", 5,
        "An event that failed this often turns the check and the sensor red.", ge=1, le=1000,
    )  # fmt: skip
    budget_seconds: float = _env(
        "MODEL_SYNC_WEBHOOK_BUDGET_SECONDS", 20.0,
        "Time one delivery pass may take (well inside a sensor tick's 60 s).", ge=1, le=50,
    )  # fmt: skip


class ApiSettings(BaseModel):
    """The HTTP API's authentication and bounds (read by ``model-sync-api`` only)."""

    model_config = ConfigDict(frozen=True)

    jwt_secret: str | None = _env("MODEL_SYNC_JWT_SECRET", None, "HS256 shared secret.")
    jwt_public_key_file: Path | None = _env(
        "MODEL_SYNC_JWT_PUBLIC_KEY_FILE", None, "PEM public key (RS256 or ES256)."
    )
    jwt_jwks_file: Path | None = _env("MODEL_SYNC_JWT_JWKS_FILE", None, "JWKS of public keys.")
    jwt_issuer: str | None = _env("MODEL_SYNC_JWT_ISSUER", None, "Required iss.")
    jwt_audience: str | None = _env("MODEL_SYNC_JWT_AUDIENCE", None, "Required aud.")
    jwt_max_lifetime_seconds: int | None = _env(
        "MODEL_SYNC_JWT_MAX_LIFETIME_SECONDS", None,
        "Refuse tokens whose exp - iat is longer.", ge=1,
    )  # fmt: skip
    sync_wait_seconds: float = _env(
        "MODEL_SYNC_API_SYNC_WAIT_SECONDS", 120.0,
        "How long POST sync-models waits for its run before answering 202.", ge=0, le=3600,
    )  # fmt: skip
    read_timeout_seconds: float = _env(
        "MODEL_SYNC_API_READ_TIMEOUT_SECONDS", 5.0,
        "Statement timeout of the read endpoints.", ge=0.1, le=300,
    )  # fmt: skip


class SourceSettings(Config):
    """One enabled source and where its model list is read from."""

    name: str
    url: str


class Settings(BaseModel):
    """The resolved configuration of one process: code location, API or CLI."""

    model_config = ConfigDict(frozen=True)

    database_url: str | None = _env(
        "MODEL_SYNC_DATABASE_URL", None, "Where the catalog lives; unset: embedded Postgres."
    )
    data_dir: Path | None = _env(
        "MODEL_SYNC_DATA_DIR", None,
        "Embedded Postgres data folder; unset: $DAGSTER_HOME/model_sync, else ./.model_sync.",
    )  # fmt: skip
    db_connect_timeout_seconds: int = _env(
        "MODEL_SYNC_DB_CONNECT_TIMEOUT_SECONDS", 10, "Connect timeout of every catalog "
        "connection.", ge=1, le=600,
    )  # fmt: skip
    cron_schedule: str = _env(
        "MODEL_SYNC_CRON_SCHEDULE", DEFAULT_CRON_SCHEDULE, "When the schedule runs (UTC)."
    )
    enabled: bool = _env(
        "MODEL_SYNC_ENABLED", True, "Schedule's and sensors' default status: running or stopped."
    )
    freshness_hours: float = _env(
        "MODEL_SYNC_FRESHNESS_HOURS", 26.0, "Freshness window of each source's catalog asset.",
        ge=0.1, le=24 * 366,
    )  # fmt: skip
    poll_seconds: int = _env(
        "MODEL_SYNC_POLL_SECONDS", 60, "Change-detection poll interval per source; 0 = off.",
        ge=0, le=86400,
    )  # fmt: skip
    sources: tuple[SourceSettings, ...] = Field(
        default=None, description="Enabled sources (MODEL_SYNC_SOURCES) and their URLs."
    )
    http: HttpSettings = HttpSettings()
    sync: SyncPolicy = SyncPolicy()
    webhooks: WebhookSettings = WebhookSettings()
    api: ApiSettings = ApiSettings()

    def model_post_init(self, context: Any) -> None:
        if self.sources is None:
            # Imported here: the registry imports the sources, which import this module.
            from model_sync.sources import default_source_settings

            object.__setattr__(self, "sources", default_source_settings())
        if self.sync.anomaly_warn_factor > self.sync.anomaly_fail_factor:
            raise SettingsError(
                f"MODEL_SYNC_ANOMALY_WARN_FACTOR={self.sync.anomaly_warn_factor} is above "
                f"MODEL_SYNC_ANOMALY_FAIL_FACTOR={self.sync.anomaly_fail_factor}"
            )
        if self.webhooks.urls and not self.webhooks.secret:
            raise SettingsError(
                "MODEL_SYNC_WEBHOOK_URLS is set but MODEL_SYNC_WEBHOOK_SECRET is not: every "
                "delivery is signed, so subscribers need a shared secret"
            )

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(source.name for source in self.sources)

    def source(self, name: str) -> SourceSettings:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"source {name!r} is not enabled (MODEL_SYNC_SOURCES)")

    def with_source_urls(self, **urls: str) -> Settings:
        """A copy with these sources enabled at these URLs (tests, scripts, the benchmark)."""
        kept = [s for s in self.sources if s.name not in urls]
        added = [SourceSettings(name=name, url=url) for name, url in urls.items()]
        return self.model_copy(update={"sources": tuple(added + kept)})

    def embedded_data_dir(self) -> Path:
        return (self.data_dir or default_data_dir(os.environ)).absolute()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        try:
            groups = {
                name: _read_group(model_class, env)
                for name, model_class in (
                    ("http", HttpSettings),
                    ("sync", SyncPolicy),
                    ("webhooks", WebhookSettings),
                    ("api", ApiSettings),
                )
            }
            values = _read_fields(cls, env, skip=("sources", *groups))
        except _VariableError as error:
            raise SettingsError(str(error)) from None
        values.setdefault("data_dir", default_data_dir(env))
        if "cron_schedule" in values:
            values["cron_schedule"] = normalize_cron(values["cron_schedule"])
        from model_sync.sources import source_settings_from_env

        sources = source_settings_from_env(env)
        try:
            return cls(**values, **groups, sources=sources)
        except ValidationError as error:
            # A rule across variables (model_post_init), reported like any other variable's.
            message = error.errors(include_url=False)[0]["msg"]
            raise SettingsError(message.removeprefix("Value error, ")) from None


def default_data_dir(env: Mapping[str, str]) -> Path:
    dagster_home = (env.get("DAGSTER_HOME") or "").strip()
    return (
        Path(dagster_home) / "model_sync" if dagster_home else Path.cwd() / ".model_sync"
    ).absolute()


class _VariableError(Exception):
    pass


def _variable(model_class: type[BaseModel], field: str) -> str:
    extra = model_class.model_fields[field].json_schema_extra
    return extra["env"] if isinstance(extra, dict) else field


def _raw_value(model_class: type[BaseModel], field: str, raw: str) -> Any:
    """The variable's text in the shape the field wants (lists are comma/space separated)."""
    annotation = str(model_class.model_fields[field].annotation)
    if annotation.startswith("list["):
        return [part for part in raw.replace(",", " ").split() if part]
    return raw.strip()


def _read_fields(
    model_class: type[BaseModel], env: Mapping[str, str], skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The fields whose variables are set (blank counts as unset), validated together; an
    error names the variable and the value it holds."""
    raw_values: dict[str, str] = {}
    values: dict[str, Any] = {}
    for field in model_class.model_fields:
        raw = env.get(_variable(model_class, field))
        if field in skip or raw is None or not raw.strip():
            continue
        raw_values[field] = raw
        values[field] = _raw_value(model_class, field, raw)
    try:
        validated = model_class.model_validate(values)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        field = str(problem["loc"][0])
        variable = _variable(model_class, field)
        raise _VariableError(f"{variable}={raw_values[field]!r}: {problem['msg']}") from None
    for field, raw in raw_values.items():
        _check_special(_variable(model_class, field), raw, values[field])
    return {field: getattr(validated, field) for field in values}


def _read_group(model_class: type[BaseModel], env: Mapping[str, str]) -> BaseModel:
    return model_class(**_read_fields(model_class, env))


def _check_special(variable: str, raw: str, value: Any) -> None:
    """Rules a type annotation cannot say."""
    if variable == "MODEL_SYNC_WEBHOOK_URLS":
        for url in value:
            if not url.lower().startswith(("http://", "https://")):
                raise _VariableError(f"{variable}: {url!r} is not an http(s) URL")


def normalize_cron(expression: str, variable: str = "MODEL_SYNC_CRON_SCHEDULE") -> str:
    """Return a five-field cron expression.

    The NestJS module used six-field expressions with a leading seconds field
    (``0 0 2 * * *``). Dagster schedules have minute resolution, so a seconds field of ``0``
    is dropped; any other seconds value would silently change the schedule, so it is refused.
    """
    fields = expression.split()
    if len(fields) == 6:
        seconds, *rest = fields
        if seconds != "0":
            raise SettingsError(
                f"{variable}={expression!r}: a six-field cron expression must have 0 in its "
                "seconds field (Dagster schedules run at minute resolution)"
            )
        fields = rest
    if len(fields) != 5:
        raise SettingsError(
            f"{variable}={expression!r}: expected a cron expression of 5 fields "
            "(minute hour day month weekday), or 6 with a leading seconds field of 0"
        )
    normalized = " ".join(fields)
    # Dagster's own validation, through its public API: the schedule would reject the same
    # string at definition time, but with a message that does not name our variable.
    from dagster import DagsterInvalidDefinitionError, ScheduleDefinition

    try:
        ScheduleDefinition(name="cron_validation", cron_schedule=normalized, job_name="none")
    except DagsterInvalidDefinitionError:
        raise SettingsError(f"{variable}={expression!r}: not a valid cron expression") from None
    return normalized
