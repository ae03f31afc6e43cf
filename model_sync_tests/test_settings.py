"""Environment parsing, the cron conversion from the old module's six-field form, the schedule,
the job, the freshness policy and the EnvVar references the UI shows."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    Definitions,
    EnvVar,
    FreshnessPolicy,
    RunRequest,
    build_schedule_context,
    job,
    op,
)

from model_sync.definitions import build_definitions
from model_sync.resources import CatalogDatabase, ChangeFeed
from model_sync.schedules import SCHEDULE_NAME, SYNC_JOB_NAME
from model_sync.settings import (
    DEFAULT_CRON_SCHEDULE,
    ApiSettings,
    ConcurrentSync,
    HttpSettings,
    Settings,
    SettingsError,
    SourceSettings,
    SyncPolicy,
    WebhookSettings,
    normalize_cron,
)
from model_sync.sources import SOURCES, SOURCES_VARIABLE

VERCEL_DEFAULT_URL = "https://ai-gateway.vercel.sh/v1/models"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0 2 * * *", "0 2 * * *"),
        ("0 0 2 * * *", "0 2 * * *"),
        ("0 0 */6 * * *", "0 */6 * * *"),
        ("0 0 2,14 * * *", "0 2,14 * * *"),
        ("  0   0 2 * * 1-5 ", "0 2 * * 1-5"),
    ],
)
def test_cron_expressions_are_accepted_and_six_field_forms_converted(given, expected):
    assert normalize_cron(given) == expected


@pytest.mark.parametrize(
    "given",
    ["30 0 2 * * *", "*/5 * * * * *", "0 2 * *", "0 0 0 2 * * *", "61 2 * * *", "bad", ""],
)
def test_other_seconds_values_and_invalid_expressions_fail_naming_the_variable(given):
    with pytest.raises(SettingsError, match="MODEL_SYNC_CRON_SCHEDULE"):
        normalize_cron(given)


def test_invalid_cron_in_the_environment_fails_at_load():
    with pytest.raises(SettingsError, match="MODEL_SYNC_CRON_SCHEDULE='15 0 2 \\* \\* \\*'"):
        Settings.from_env({"MODEL_SYNC_CRON_SCHEDULE": "15 0 2 * * *"})


def test_defaults_when_nothing_is_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.source_names == ("vercel",)
    assert settings.source("vercel").url == VERCEL_DEFAULT_URL
    assert settings.cron_schedule == DEFAULT_CRON_SCHEDULE == "0 2 * * *"
    assert settings.enabled is True
    assert settings.data_dir == tmp_path / ".model_sync"
    assert settings.sync.max_deactivation_share == 0.5
    assert settings.freshness_hours == 26
    assert settings.http.timeout_seconds == 30
    assert settings.db_connect_timeout_seconds == 10
    assert settings.poll_seconds == 60
    assert settings.sync.price_tolerance == 0.005
    assert settings.sync.concurrent_sync == ConcurrentSync.WAIT
    assert settings.webhooks.urls == []
    assert settings.webhooks.secret is None
    assert settings.webhooks.budget_seconds == 20
    assert settings.api.jwt_secret is None
    assert settings.api.jwt_max_lifetime_seconds is None
    assert settings.api.sync_wait_seconds == 120
    assert settings.api.read_timeout_seconds == 5


# Every variable, set to a value other than its default (so a variable that is not read shows).
EVERY_VARIABLE = {
    "MODEL_SYNC_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/x",
    "MODEL_SYNC_SOURCES": "vercel, openrouter,models_dev , litellm",
    "MODEL_SYNC_VERCEL_URL": "file:///srv/models.json",
    "MODEL_SYNC_OPENROUTER_URL": "/srv/openrouter.json",
    "MODEL_SYNC_MODELS_DEV_URL": "https://mirror.example/models.dev.json",
    "MODEL_SYNC_LITELLM_URL": "file:///srv/litellm.json",
    "MODEL_SYNC_CRON_SCHEDULE": "0 0 */6 * * *",
    "MODEL_SYNC_ENABLED": "false",
    "MODEL_SYNC_DATA_DIR": "/var/lib/model_sync_pg",
    "MODEL_SYNC_DB_CONNECT_TIMEOUT_SECONDS": "7",
    "MODEL_SYNC_POLL_SECONDS": "300",
    "MODEL_SYNC_HTTP_TIMEOUT_SECONDS": "5",
    "MODEL_SYNC_HTTP_MAX_RETRIES": "1",
    "MODEL_SYNC_HTTP_BACKOFF_SECONDS": "0.5",
    "MODEL_SYNC_MAX_BODY_BYTES": "2048",
    "MODEL_SYNC_MAX_DEACTIVATION_SHARE": "0.25",
    "MODEL_SYNC_FRESHNESS_HOURS": "48",
    "MODEL_SYNC_MAX_FAILED_SHARE": "0.2",
    "MODEL_SYNC_LOCK_TIMEOUT_SECONDS": "3",
    "MODEL_SYNC_STATEMENT_TIMEOUT_SECONDS": "60",
    "MODEL_SYNC_ANOMALY_FAIL_FACTOR": "20",
    "MODEL_SYNC_ANOMALY_WARN_FACTOR": "4",
    "MODEL_SYNC_PRICE_TOLERANCE": "0.02",
    "MODEL_SYNC_CONCURRENT_SYNC": "skip",
    "MODEL_SYNC_WEBHOOK_URLS": "https://a.example/hook, http://127.0.0.1:9000/hook",
    "MODEL_SYNC_WEBHOOK_SECRET": "s3cret",
    "MODEL_SYNC_WEBHOOK_TIMEOUT_SECONDS": "3",
    "MODEL_SYNC_WEBHOOK_BACKOFF_SECONDS": "5",
    "MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS": "7",
    "MODEL_SYNC_WEBHOOK_BUDGET_SECONDS": "12.5",
    "MODEL_SYNC_JWT_SECRET": "jwt-s3cret",
    "MODEL_SYNC_JWT_PUBLIC_KEY_FILE": "/etc/model_sync/jwt.pem",
    "MODEL_SYNC_JWT_JWKS_FILE": "/etc/model_sync/jwks.json",
    "MODEL_SYNC_JWT_ISSUER": "https://auth.example.com/",
    "MODEL_SYNC_JWT_AUDIENCE": "model-sync",
    "MODEL_SYNC_JWT_MAX_LIFETIME_SECONDS": "900",
    "MODEL_SYNC_API_SYNC_WAIT_SECONDS": "30",
    "MODEL_SYNC_API_READ_TIMEOUT_SECONDS": "2.5",
}


def test_every_variable_is_read():
    assert Settings.from_env(EVERY_VARIABLE) == Settings(
        database_url="postgresql://postgres@127.0.0.1:5432/x",
        sources=(
            SourceSettings(name="vercel", url="file:///srv/models.json"),
            SourceSettings(name="openrouter", url="/srv/openrouter.json"),
            SourceSettings(name="models_dev", url="https://mirror.example/models.dev.json"),
            SourceSettings(name="litellm", url="file:///srv/litellm.json"),
        ),
        cron_schedule="0 */6 * * *",
        enabled=False,
        data_dir=Path("/var/lib/model_sync_pg"),
        db_connect_timeout_seconds=7,
        poll_seconds=300,
        freshness_hours=48.0,
        http=HttpSettings(
            timeout_seconds=5.0, max_retries=1, backoff_seconds=0.5, max_body_bytes=2048
        ),
        sync=SyncPolicy(
            max_deactivation_share=0.25,
            max_failed_share=0.2,
            anomaly_fail_factor=20.0,
            anomaly_warn_factor=4.0,
            price_tolerance=0.02,
            concurrent_sync=ConcurrentSync.SKIP,
            lock_timeout_seconds=3.0,
            statement_timeout_seconds=60.0,
        ),
        webhooks=WebhookSettings(
            urls=["https://a.example/hook", "http://127.0.0.1:9000/hook"],
            secret="s3cret",
            timeout_seconds=3.0,
            backoff_seconds=5.0,
            alert_after_attempts=7,
            budget_seconds=12.5,
        ),
        api=ApiSettings(
            jwt_secret="jwt-s3cret",
            jwt_public_key_file=Path("/etc/model_sync/jwt.pem"),
            jwt_jwks_file=Path("/etc/model_sync/jwks.json"),
            jwt_issuer="https://auth.example.com/",
            jwt_audience="model-sync",
            jwt_max_lifetime_seconds=900,
            sync_wait_seconds=30.0,
            read_timeout_seconds=2.5,
        ),
    )


def _declared_variables() -> set[str]:
    """Every variable a settings field declares, every source's URL variables, the source list."""
    declared = {SOURCES_VARIABLE}
    for model in (Settings, HttpSettings, SyncPolicy, WebhookSettings, ApiSettings):
        for field in model.model_fields.values():
            if isinstance(field.json_schema_extra, dict) and "env" in field.json_schema_extra:
                declared.add(field.json_schema_extra["env"])
    for source in SOURCES.values():
        declared.update(source.url_variables)
    return declared


def test_the_every_variable_test_covers_every_declared_variable():
    """A variable added to the settings without being added above would go untested."""
    # MODEL_SYNC_GATEWAY_URL is Vercel's old name, read when MODEL_SYNC_VERCEL_URL is unset
    # (next test).
    assert _declared_variables() == set(EVERY_VARIABLE) | {"MODEL_SYNC_GATEWAY_URL"}


def test_the_old_gateway_url_variable_still_sets_the_vercel_url():
    settings = Settings.from_env({"MODEL_SYNC_GATEWAY_URL": "file:///srv/models.json"})
    assert settings.sources == (SourceSettings(name="vercel", url="file:///srv/models.json"),)


def test_jwt_key_files_are_not_checked_when_settings_load(tmp_path):
    """Only the API reads the key files, when it starts: the code location must load without."""
    missing = tmp_path / "missing.pem"
    settings = Settings.from_env({"MODEL_SYNC_JWT_PUBLIC_KEY_FILE": str(missing)})
    assert settings.api.jwt_public_key_file == missing


def test_webhook_urls_without_a_secret_fail_naming_both_variables():
    """Every delivery is signed: subscribers without a shared secret are a configuration error,
    reported like any other (SettingsError, which the CLI and the API print as such)."""
    env = {"MODEL_SYNC_WEBHOOK_URLS": "https://hooks.example/models"}
    with pytest.raises(SettingsError, match="MODEL_SYNC_WEBHOOK_URLS .*MODEL_SYNC_WEBHOOK_SECRET"):
        Settings.from_env(env)
    settings = Settings.from_env({**env, "MODEL_SYNC_WEBHOOK_SECRET": "s3cret"})
    assert settings.webhooks.urls == ["https://hooks.example/models"]


def test_data_dir_defaults_under_dagster_home(tmp_path):
    assert Settings.from_env({"DAGSTER_HOME": str(tmp_path)}).data_dir == tmp_path / "model_sync"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODEL_SYNC_ENABLED", "maybe"),
        ("MODEL_SYNC_MAX_DEACTIVATION_SHARE", "1.5"),
        ("MODEL_SYNC_HTTP_MAX_RETRIES", "three"),
        ("MODEL_SYNC_FRESHNESS_HOURS", "-1"),
        ("MODEL_SYNC_POLL_SECONDS", "1.5"),
        ("MODEL_SYNC_DB_CONNECT_TIMEOUT_SECONDS", "ten"),
        ("MODEL_SYNC_PRICE_TOLERANCE", "half a percent"),
        ("MODEL_SYNC_CONCURRENT_SYNC", "sometimes"),
        ("MODEL_SYNC_JWT_MAX_LIFETIME_SECONDS", "1h"),
        ("MODEL_SYNC_API_SYNC_WAIT_SECONDS", "forever"),
        ("MODEL_SYNC_WEBHOOK_URLS", "ftp://a.example/hook"),
        ("MODEL_SYNC_SOURCES", "vercel,nosuchsource"),
    ],
)
def test_bad_values_fail_with_the_variable_named(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def _attribute(settings: Settings, path: str):
    """``settings`` attribute by dotted path (``"http.timeout_seconds"``)."""
    value = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


# (variable, value at its limit, value one step past it, Settings attribute, parsed value).
# Limits are inclusive: the value at the limit is accepted, one step past is refused.
# Written by hand from each variable's declared bounds.
LIMITS = [
    ("MODEL_SYNC_HTTP_TIMEOUT_SECONDS", "0.1", "0.09", "http.timeout_seconds", 0.1),
    ("MODEL_SYNC_HTTP_TIMEOUT_SECONDS", "3600", "3600.01", "http.timeout_seconds", 3600.0),
    ("MODEL_SYNC_HTTP_MAX_RETRIES", "0", "-1", "http.max_retries", 0),
    ("MODEL_SYNC_HTTP_MAX_RETRIES", "20", "21", "http.max_retries", 20),
    ("MODEL_SYNC_HTTP_BACKOFF_SECONDS", "0", "-0.01", "http.backoff_seconds", 0.0),
    ("MODEL_SYNC_HTTP_BACKOFF_SECONDS", "300", "300.01", "http.backoff_seconds", 300.0),
    ("MODEL_SYNC_MAX_BODY_BYTES", "1024", "1023", "http.max_body_bytes", 1024),
    ("MODEL_SYNC_MAX_DEACTIVATION_SHARE", "0", "-0.01", "sync.max_deactivation_share", 0.0),
    ("MODEL_SYNC_MAX_DEACTIVATION_SHARE", "1", "1.01", "sync.max_deactivation_share", 1.0),
    ("MODEL_SYNC_FRESHNESS_HOURS", "0.1", "0.09", "freshness_hours", 0.1),
    ("MODEL_SYNC_FRESHNESS_HOURS", "8784", "8784.01", "freshness_hours", 8784.0),
    ("MODEL_SYNC_MAX_FAILED_SHARE", "0", "-0.01", "sync.max_failed_share", 0.0),
    ("MODEL_SYNC_MAX_FAILED_SHARE", "1", "1.01", "sync.max_failed_share", 1.0),
    ("MODEL_SYNC_LOCK_TIMEOUT_SECONDS", "0.1", "0.09", "sync.lock_timeout_seconds", 0.1),
    ("MODEL_SYNC_LOCK_TIMEOUT_SECONDS", "3600", "3600.01", "sync.lock_timeout_seconds", 3600.0),
    (
        "MODEL_SYNC_STATEMENT_TIMEOUT_SECONDS",
        "0.1",
        "0.09",
        "sync.statement_timeout_seconds",
        0.1,
    ),
    ("MODEL_SYNC_ANOMALY_FAIL_FACTOR", "1000000", "1000000.1", "sync.anomaly_fail_factor", 1e6),
    ("MODEL_SYNC_ANOMALY_WARN_FACTOR", "1", "0.99", "sync.anomaly_warn_factor", 1.0),
    ("MODEL_SYNC_PRICE_TOLERANCE", "0", "-0.001", "sync.price_tolerance", 0.0),
    ("MODEL_SYNC_PRICE_TOLERANCE", "10", "10.001", "sync.price_tolerance", 10.0),
    ("MODEL_SYNC_WEBHOOK_TIMEOUT_SECONDS", "0.1", "0.09", "webhooks.timeout_seconds", 0.1),
    ("MODEL_SYNC_WEBHOOK_TIMEOUT_SECONDS", "300", "300.01", "webhooks.timeout_seconds", 300.0),
    ("MODEL_SYNC_WEBHOOK_BACKOFF_SECONDS", "0", "-0.01", "webhooks.backoff_seconds", 0.0),
    (
        "MODEL_SYNC_WEBHOOK_BACKOFF_SECONDS",
        "3600",
        "3600.01",
        "webhooks.backoff_seconds",
        3600.0,
    ),
    ("MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS", "1", "0", "webhooks.alert_after_attempts", 1),
    (
        "MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS",
        "1000",
        "1001",
        "webhooks.alert_after_attempts",
        1000,
    ),
    ("MODEL_SYNC_WEBHOOK_BUDGET_SECONDS", "1", "0.99", "webhooks.budget_seconds", 1.0),
    ("MODEL_SYNC_WEBHOOK_BUDGET_SECONDS", "50", "50.01", "webhooks.budget_seconds", 50.0),
    ("MODEL_SYNC_DB_CONNECT_TIMEOUT_SECONDS", "1", "0", "db_connect_timeout_seconds", 1),
    ("MODEL_SYNC_DB_CONNECT_TIMEOUT_SECONDS", "600", "601", "db_connect_timeout_seconds", 600),
    ("MODEL_SYNC_POLL_SECONDS", "0", "-1", "poll_seconds", 0),
    ("MODEL_SYNC_POLL_SECONDS", "86400", "86401", "poll_seconds", 86400),
    ("MODEL_SYNC_API_SYNC_WAIT_SECONDS", "0", "-0.01", "api.sync_wait_seconds", 0.0),
    ("MODEL_SYNC_API_SYNC_WAIT_SECONDS", "3600", "3600.01", "api.sync_wait_seconds", 3600.0),
    ("MODEL_SYNC_API_READ_TIMEOUT_SECONDS", "0.1", "0.09", "api.read_timeout_seconds", 0.1),
    ("MODEL_SYNC_API_READ_TIMEOUT_SECONDS", "300", "300.01", "api.read_timeout_seconds", 300.0),
    ("MODEL_SYNC_JWT_MAX_LIFETIME_SECONDS", "1", "0", "api.jwt_max_lifetime_seconds", 1),
]


@pytest.mark.parametrize(
    ("name", "at_limit", "past_limit", "attribute", "parsed"),
    [pytest.param(*limit, id=f"{limit[0]}={limit[1]}") for limit in LIMITS],
)
def test_each_numeric_limit_is_inclusive(name, at_limit, past_limit, attribute, parsed):
    assert _attribute(Settings.from_env({name: at_limit}), attribute) == parsed
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: past_limit})


@pytest.mark.parametrize(
    ("fail", "warn", "accepted"),
    [
        pytest.param("1", "1", True, id="both-at-the-lowest-factor"),
        pytest.param("0.99", "1", False, id="fail-factor-below-1"),
        pytest.param("20", "20", True, id="warn-equal-to-fail"),
        pytest.param("20", "20.01", False, id="warn-above-fail"),
    ],
)
def test_warn_factor_may_reach_but_not_pass_the_fail_factor(fail, warn, accepted):
    env = {"MODEL_SYNC_ANOMALY_FAIL_FACTOR": fail, "MODEL_SYNC_ANOMALY_WARN_FACTOR": warn}
    if accepted:
        settings = Settings.from_env(env)
        assert (settings.sync.anomaly_fail_factor, settings.sync.anomaly_warn_factor) == (
            float(fail),
            float(warn),
        )
    else:
        with pytest.raises(SettingsError, match="MODEL_SYNC_ANOMALY_"):
            Settings.from_env(env)


def _sources(*names: str) -> tuple[SourceSettings, ...]:
    return tuple(SourceSettings(name=name, url=f"/srv/{name}.json") for name in names)


def _source_request(source: str, tick: str) -> RunRequest:
    """What one schedule tick asks for one source, written out by hand."""
    return RunRequest(
        run_key=f"{source}:{tick}",
        job_name="ai_models_sync_job",
        asset_selection=[
            AssetKey([source, "gateway_models_raw"]),
            AssetKey([source, "ai_models_frame"]),
            AssetKey([source, "ai_models"]),
        ],
        tags={
            "model_sync/source": source,
            "model_sync/triggered_by": "schedule",
            # Dagster adds the schedule's name to every run request it returns.
            "dagster/schedule_name": "ai_models_sync_schedule",
        },
    )


@pytest.mark.parametrize(("enabled", "status"), [(True, "RUNNING"), (False, "STOPPED")])
def test_schedule_targets_the_job_at_the_configured_cron_in_utc(enabled, status, caplog):
    settings = Settings(cron_schedule=normalize_cron("0 0 2,14 * * *"), enabled=enabled)
    with caplog.at_level(logging.INFO, logger="model_sync"):
        defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    assert schedule.cron_schedule == "0 2,14 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == SYNC_JOB_NAME == "ai_models_sync_job"
    assert schedule.default_status == DefaultScheduleStatus[status]
    expected_log = (
        "AI Model Sync Scheduler initialized with cron: 0 2,14 * * *"
        if enabled
        else "AI Model Sync Scheduler is disabled (MODEL_SYNC_ENABLED=false)"
    )
    assert expected_log in caplog.messages
    # A tick at the scheduled time asks for one run of the sync job per enabled source (here
    # only Vercel), selecting that source's three assets, keyed by source and tick time.
    tick = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    with build_schedule_context(scheduled_execution_time=tick) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert requests == [_source_request("vercel", "2026-11-27T14:00:00+00:00")]


def test_schedule_asks_for_one_run_per_enabled_source_in_their_order():
    defs = build_definitions(Settings(sources=_sources("litellm", "vercel", "openrouter")))
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    tick = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    with build_schedule_context(scheduled_execution_time=tick) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert requests == [
        _source_request(source, "2026-11-28T02:00:00+00:00")
        for source in ("litellm", "vercel", "openrouter")
    ]


def _check_names(job_def) -> set[tuple[str, str]]:
    return {
        (key.asset_key.to_user_string(), key.name)
        for key in job_def.asset_layer.asset_graph.asset_check_keys
    }


def test_job_selects_the_sources_three_assets_and_their_checks():
    defs = build_definitions(Settings())
    job_def = defs.resolve_job_def(SYNC_JOB_NAME)
    keys = {key.to_user_string() for key in job_def.asset_layer.selected_asset_keys}
    assert keys == {"vercel/gateway_models_raw", "vercel/ai_models_frame", "vercel/ai_models"}
    assert _check_names(job_def) == {
        ("vercel/ai_models", "ai_models_sync_stats"),
        ("vercel/ai_models", "ai_models_schema_drift"),
        ("vercel/ai_models", "ai_models_webhook_deliveries"),
    }
    assert job_def.executor_def.name == "in_process"


def test_with_two_sources_the_job_holds_both_and_prices_are_compared():
    defs = build_definitions(Settings(sources=_sources("vercel", "openrouter")))
    job_def = defs.resolve_job_def(SYNC_JOB_NAME)
    keys = {key.to_user_string() for key in job_def.asset_layer.selected_asset_keys}
    assert keys == {
        f"{source}/{asset}"
        for source in ("vercel", "openrouter")
        for asset in ("gateway_models_raw", "ai_models_frame", "ai_models")
    }
    assert _check_names(job_def) == {
        (f"{source}/ai_models", check)
        for source in ("vercel", "openrouter")
        for check in (
            "ai_models_sync_stats",
            "ai_models_schema_drift",
            "ai_models_webhook_deliveries",
            "ai_models_price_agreement",
        )
    }


def test_freshness_policy_window_follows_the_setting():
    defs = build_definitions(Settings(freshness_hours=30))
    graph = defs.resolve_asset_graph()
    policy = graph.get(AssetKey(["vercel", "ai_models"])).freshness_policy
    assert policy == FreshnessPolicy.time_window(fail_window=timedelta(hours=30))
    # Only the catalog table has one: the raw body and the frame are not kept fresh on their own.
    for name in ("gateway_models_raw", "ai_models_frame"):
        assert graph.get(AssetKey(["vercel", name])).freshness_policy is None


def _resolved_at_run_time(defs: Definitions) -> dict[str, str | None]:
    """The database URL and webhook secret as a run sees them (EnvVars resolved)."""
    seen: dict[str, str | None] = {}

    @op
    def probe(catalog: CatalogDatabase, change_feed: ChangeFeed) -> None:
        seen["database_url"] = catalog.database_url
        seen["secret"] = change_feed.settings.secret

    @job
    def probe_job() -> None:
        probe()

    resources = {name: defs.resources[name] for name in ("catalog", "change_feed")}
    result = Definitions(jobs=[probe_job], resources=resources).resolve_job_def("probe_job")
    assert result.execute_in_process().success
    return seen


def test_env_var_references_stay_references_in_the_ui(monkeypatch):
    """A database URL or webhook secret given by env var is shown as EnvVar, not as the secret
    value; a run still gets the value."""
    url = "postgresql://user:db-pa55word@db.internal/x"
    monkeypatch.setenv("MODEL_SYNC_DATABASE_URL", url)
    monkeypatch.setenv("MODEL_SYNC_WEBHOOK_URLS", "https://hooks.example/models")
    monkeypatch.setenv("MODEL_SYNC_WEBHOOK_SECRET", "hook-s3cret")
    defs = build_definitions(Settings.from_env())
    catalog = defs.resources["catalog"]
    change_feed = defs.resources["change_feed"]
    assert isinstance(catalog.database_url, EnvVar)
    assert catalog.database_url.env_var_name == "MODEL_SYNC_DATABASE_URL"
    assert isinstance(change_feed.settings.secret, EnvVar)
    assert change_feed.settings.secret.env_var_name == "MODEL_SYNC_WEBHOOK_SECRET"
    for shown in (repr(catalog), repr(change_feed)):
        assert "db-pa55word" not in shown
        assert "hook-s3cret" not in shown
    assert Path(catalog.data_dir).is_absolute()
    assert _resolved_at_run_time(defs) == {"database_url": url, "secret": "hook-s3cret"}


def test_values_set_in_code_are_never_replaced_by_the_environment(monkeypatch):
    """Only a value that came from the variable becomes a reference to it."""
    monkeypatch.setenv("MODEL_SYNC_DATABASE_URL", "postgresql://user:secret@db.internal/x")
    monkeypatch.setenv("MODEL_SYNC_WEBHOOK_SECRET", "hook-s3cret")
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:5432/tests",
        webhooks=WebhookSettings(urls=["https://hooks.example/models"], secret="code-secret"),
    )
    defs = build_definitions(settings)
    catalog = defs.resources["catalog"]
    change_feed = defs.resources["change_feed"]
    assert not isinstance(catalog.database_url, EnvVar)
    assert catalog.database_url == "postgresql://postgres@127.0.0.1:5432/tests"
    assert not isinstance(change_feed.settings.secret, EnvVar)
    assert change_feed.settings.secret == "code-secret"
