"""Every ``MODEL_SYNC_*`` environment variable, parsed and validated in one place.

Parsing happens once, when the code location loads, so a typo in a variable fails the load
with a message naming the variable instead of surfacing hours later in a scheduled run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_GATEWAY_URL = "https://ai-gateway.vercel.sh/v1/models"
DEFAULT_CRON_SCHEDULE = "0 2 * * *"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A ``MODEL_SYNC_*`` variable holds a value we cannot use."""


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


def _parse_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r}: expected true or false")


def _parse_number(env: Mapping[str, str], name: str, default, kind, *, minimum=None, maximum=None):
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a {kind.__name__}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise SettingsError(f"{name}={raw!r}: must be between {minimum} and {maximum}")
    return value


def _parse_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``; the first is the default."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return choices[0]
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
    return raw


def _parse_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise SettingsError(f"{name}={raw!r}: no such file")
    return path


def _parse_urls(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma- or whitespace-separated http(s) URLs."""
    raw = env.get(name) or ""
    urls = tuple(part for part in raw.replace(",", " ").split() if part)
    for url in urls:
        if not url.lower().startswith(("http://", "https://")):
            raise SettingsError(f"{name}: {url!r} is not an http(s) URL")
    return urls


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one code location."""

    database_url: str | None = None
    gateway_url: str = DEFAULT_GATEWAY_URL
    cron_schedule: str = DEFAULT_CRON_SCHEDULE
    enabled: bool = True
    data_dir: Path = field(default_factory=lambda: Path(".model_sync"))
    http_timeout_seconds: float = 30.0
    http_max_retries: int = 4
    http_backoff_seconds: float = 1.0
    max_body_bytes: int = 50 * 1024 * 1024
    max_deactivation_share: float = 0.5
    freshness_hours: float = 26.0
    max_failed_share: float = 0.1
    lock_timeout_seconds: float = 30.0
    statement_timeout_seconds: float = 300.0
    anomaly_fail_factor: float = 10.0
    anomaly_warn_factor: float = 3.0
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str | None = None
    webhook_timeout_seconds: float = 10.0
    webhook_backoff_seconds: float = 30.0
    webhook_alert_after_attempts: int = 5
    concurrent_sync: str = "wait"
    jwt_secret: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_jwks_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        dagster_home = env.get("DAGSTER_HOME")
        default_data_dir = (
            Path(dagster_home) / "model_sync" if dagster_home else Path.cwd() / ".model_sync"
        )
        data_dir = env.get("MODEL_SYNC_DATA_DIR") or default_data_dir
        fail_factor = _parse_number(
            env, "MODEL_SYNC_ANOMALY_FAIL_FACTOR", 10.0, float, minimum=1, maximum=1e6
        )
        webhook_urls = _parse_urls(env, "MODEL_SYNC_WEBHOOK_URLS")
        webhook_secret = env.get("MODEL_SYNC_WEBHOOK_SECRET") or None
        if webhook_urls and not webhook_secret:
            raise SettingsError(
                "MODEL_SYNC_WEBHOOK_URLS is set but MODEL_SYNC_WEBHOOK_SECRET is not: every "
                "delivery is signed, so subscribers need a shared secret"
            )
        return cls(
            database_url=(env.get("MODEL_SYNC_DATABASE_URL") or "").strip() or None,
            gateway_url=(env.get("MODEL_SYNC_GATEWAY_URL") or "").strip() or DEFAULT_GATEWAY_URL,
            cron_schedule=normalize_cron(
                (env.get("MODEL_SYNC_CRON_SCHEDULE") or "").strip() or DEFAULT_CRON_SCHEDULE
            ),
            enabled=_parse_bool(env, "MODEL_SYNC_ENABLED", True),
            data_dir=Path(data_dir).absolute(),
            http_timeout_seconds=_parse_number(
                env, "MODEL_SYNC_HTTP_TIMEOUT_SECONDS", 30.0, float, minimum=0.1, maximum=3600
            ),
            http_max_retries=_parse_number(
                env, "MODEL_SYNC_HTTP_MAX_RETRIES", 4, int, minimum=0, maximum=20
            ),
            http_backoff_seconds=_parse_number(
                env, "MODEL_SYNC_HTTP_BACKOFF_SECONDS", 1.0, float, minimum=0, maximum=300
            ),
            max_body_bytes=_parse_number(
                env, "MODEL_SYNC_MAX_BODY_BYTES", 50 * 1024 * 1024, int, minimum=1024
            ),
            max_deactivation_share=_parse_number(
                env, "MODEL_SYNC_MAX_DEACTIVATION_SHARE", 0.5, float, minimum=0, maximum=1
            ),
            freshness_hours=_parse_number(
                env, "MODEL_SYNC_FRESHNESS_HOURS", 26.0, float, minimum=0.1, maximum=24 * 366
            ),
            max_failed_share=_parse_number(
                env, "MODEL_SYNC_MAX_FAILED_SHARE", 0.1, float, minimum=0, maximum=1
            ),
            lock_timeout_seconds=_parse_number(
                env, "MODEL_SYNC_LOCK_TIMEOUT_SECONDS", 30.0, float, minimum=0.1, maximum=3600
            ),
            statement_timeout_seconds=_parse_number(
                env, "MODEL_SYNC_STATEMENT_TIMEOUT_SECONDS", 300.0, float, minimum=0.1
            ),
            anomaly_fail_factor=fail_factor,
            anomaly_warn_factor=_parse_number(
                env, "MODEL_SYNC_ANOMALY_WARN_FACTOR", 3.0, float, minimum=1, maximum=fail_factor
            ),
            webhook_urls=webhook_urls,
            webhook_secret=webhook_secret,
            webhook_timeout_seconds=_parse_number(
                env, "MODEL_SYNC_WEBHOOK_TIMEOUT_SECONDS", 10.0, float, minimum=0.1, maximum=300
            ),
            webhook_backoff_seconds=_parse_number(
                env, "MODEL_SYNC_WEBHOOK_BACKOFF_SECONDS", 30.0, float, minimum=0, maximum=3600
            ),
            concurrent_sync=_parse_choice(env, "MODEL_SYNC_CONCURRENT_SYNC", ("wait", "skip")),
            jwt_secret=env.get("MODEL_SYNC_JWT_SECRET") or None,
            jwt_public_key_file=_parse_file(env, "MODEL_SYNC_JWT_PUBLIC_KEY_FILE"),
            jwt_jwks_file=_parse_file(env, "MODEL_SYNC_JWT_JWKS_FILE"),
            jwt_issuer=env.get("MODEL_SYNC_JWT_ISSUER") or None,
            jwt_audience=env.get("MODEL_SYNC_JWT_AUDIENCE") or None,
            webhook_alert_after_attempts=_parse_number(
                env, "MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS", 5, int, minimum=1, maximum=1000
            ),
        )
