"""Environment parsing, the cron conversion from the old module's six-field form, the schedule."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, DefaultScheduleStatus, FreshnessPolicy, build_schedule_context

from model_sync.definitions import build_definitions
from model_sync.schedules import SCHEDULE_NAME, SYNC_JOB_NAME
from model_sync.settings import (
    DEFAULT_CRON_SCHEDULE,
    DEFAULT_GATEWAY_URL,
    Settings,
    SettingsError,
    normalize_cron,
)


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
    assert settings.gateway_url == DEFAULT_GATEWAY_URL
    assert settings.cron_schedule == DEFAULT_CRON_SCHEDULE == "0 2 * * *"
    assert settings.enabled is True
    assert settings.data_dir == tmp_path / ".model_sync"
    assert settings.max_deactivation_share == 0.5
    assert settings.freshness_hours == 26
    assert settings.http_timeout_seconds == 30


def test_every_variable_is_read(tmp_path):
    env = {
        "MODEL_SYNC_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/x",
        "MODEL_SYNC_GATEWAY_URL": "file:///srv/models.json",
        "MODEL_SYNC_CRON_SCHEDULE": "0 0 */6 * * *",
        "MODEL_SYNC_ENABLED": "false",
        "MODEL_SYNC_DATA_DIR": str(tmp_path / "pg"),
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
        "MODEL_SYNC_WEBHOOK_URLS": "https://a.example/hook, http://127.0.0.1:9000/hook",
        "MODEL_SYNC_WEBHOOK_SECRET": "s3cret",
        "MODEL_SYNC_WEBHOOK_TIMEOUT_SECONDS": "3",
        "MODEL_SYNC_WEBHOOK_BACKOFF_SECONDS": "5",
        "MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS": "7",
    }
    assert Settings.from_env(env) == Settings(
        database_url="postgresql://postgres@127.0.0.1:5432/x",
        gateway_url="file:///srv/models.json",
        cron_schedule="0 */6 * * *",
        enabled=False,
        data_dir=tmp_path / "pg",
        http_timeout_seconds=5.0,
        http_max_retries=1,
        http_backoff_seconds=0.5,
        max_body_bytes=2048,
        max_deactivation_share=0.25,
        freshness_hours=48.0,
        max_failed_share=0.2,
        lock_timeout_seconds=3.0,
        statement_timeout_seconds=60.0,
        anomaly_fail_factor=20.0,
        anomaly_warn_factor=4.0,
        webhook_urls=("https://a.example/hook", "http://127.0.0.1:9000/hook"),
        webhook_secret="s3cret",
        webhook_timeout_seconds=3.0,
        webhook_backoff_seconds=5.0,
        webhook_alert_after_attempts=7,
    )


def test_data_dir_defaults_under_dagster_home(tmp_path):
    assert Settings.from_env({"DAGSTER_HOME": str(tmp_path)}).data_dir == tmp_path / "model_sync"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODEL_SYNC_ENABLED", "maybe"),
        ("MODEL_SYNC_MAX_DEACTIVATION_SHARE", "1.5"),
        ("MODEL_SYNC_HTTP_MAX_RETRIES", "three"),
        ("MODEL_SYNC_FRESHNESS_HOURS", "-1"),
    ],
)
def test_bad_values_fail_with_the_variable_named(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


# (variable, value at its limit, value one step past it, Settings attribute, parsed value).
# Limits are inclusive: the value at the limit is accepted, one step past is refused.
LIMITS = [
    ("MODEL_SYNC_HTTP_TIMEOUT_SECONDS", "0.1", "0.09", "http_timeout_seconds", 0.1),
    ("MODEL_SYNC_HTTP_TIMEOUT_SECONDS", "3600", "3600.01", "http_timeout_seconds", 3600.0),
    ("MODEL_SYNC_HTTP_MAX_RETRIES", "0", "-1", "http_max_retries", 0),
    ("MODEL_SYNC_HTTP_MAX_RETRIES", "20", "21", "http_max_retries", 20),
    ("MODEL_SYNC_HTTP_BACKOFF_SECONDS", "0", "-0.01", "http_backoff_seconds", 0.0),
    ("MODEL_SYNC_HTTP_BACKOFF_SECONDS", "300", "300.01", "http_backoff_seconds", 300.0),
    ("MODEL_SYNC_MAX_BODY_BYTES", "1024", "1023", "max_body_bytes", 1024),
    ("MODEL_SYNC_MAX_DEACTIVATION_SHARE", "0", "-0.01", "max_deactivation_share", 0.0),
    ("MODEL_SYNC_MAX_DEACTIVATION_SHARE", "1", "1.01", "max_deactivation_share", 1.0),
    ("MODEL_SYNC_FRESHNESS_HOURS", "0.1", "0.09", "freshness_hours", 0.1),
    ("MODEL_SYNC_FRESHNESS_HOURS", "8784", "8784.01", "freshness_hours", 8784.0),
    ("MODEL_SYNC_MAX_FAILED_SHARE", "0", "-0.01", "max_failed_share", 0.0),
    ("MODEL_SYNC_MAX_FAILED_SHARE", "1", "1.01", "max_failed_share", 1.0),
    ("MODEL_SYNC_LOCK_TIMEOUT_SECONDS", "0.1", "0.09", "lock_timeout_seconds", 0.1),
    ("MODEL_SYNC_LOCK_TIMEOUT_SECONDS", "3600", "3600.01", "lock_timeout_seconds", 3600.0),
    ("MODEL_SYNC_STATEMENT_TIMEOUT_SECONDS", "0.1", "0.09", "statement_timeout_seconds", 0.1),
    ("MODEL_SYNC_ANOMALY_FAIL_FACTOR", "1000000", "1000000.1", "anomaly_fail_factor", 1e6),
    ("MODEL_SYNC_ANOMALY_WARN_FACTOR", "1", "0.99", "anomaly_warn_factor", 1.0),
    ("MODEL_SYNC_WEBHOOK_TIMEOUT_SECONDS", "0.1", "0.09", "webhook_timeout_seconds", 0.1),
    ("MODEL_SYNC_WEBHOOK_TIMEOUT_SECONDS", "300", "300.01", "webhook_timeout_seconds", 300.0),
    ("MODEL_SYNC_WEBHOOK_BACKOFF_SECONDS", "0", "-0.01", "webhook_backoff_seconds", 0.0),
    ("MODEL_SYNC_WEBHOOK_BACKOFF_SECONDS", "3600", "3600.01", "webhook_backoff_seconds", 3600.0),
    ("MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS", "1", "0", "webhook_alert_after_attempts", 1),
    (
        "MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS",
        "1000",
        "1001",
        "webhook_alert_after_attempts",
        1000,
    ),
]


@pytest.mark.parametrize(
    ("name", "at_limit", "past_limit", "attribute", "parsed"),
    [pytest.param(*limit, id=f"{limit[0]}={limit[1]}") for limit in LIMITS],
)
def test_each_numeric_limit_is_inclusive(name, at_limit, past_limit, attribute, parsed):
    assert getattr(Settings.from_env({name: at_limit}), attribute) == parsed
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
        assert (settings.anomaly_fail_factor, settings.anomaly_warn_factor) == (
            float(fail),
            float(warn),
        )
    else:
        with pytest.raises(SettingsError, match="MODEL_SYNC_ANOMALY_"):
            Settings.from_env(env)


@pytest.mark.parametrize(("enabled", "status"), [(True, "RUNNING"), (False, "STOPPED")])
def test_schedule_targets_the_job_at_the_configured_cron_in_utc(enabled, status, caplog):
    settings = Settings(cron_schedule=normalize_cron("0 0 2,14 * * *"), enabled=enabled)
    with caplog.at_level(logging.INFO, logger="model_sync"):
        defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    assert schedule.cron_schedule == "0 2,14 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == SYNC_JOB_NAME
    assert schedule.default_status == DefaultScheduleStatus[status]
    expected_log = (
        "AI Model Sync Scheduler initialized with cron: 0 2,14 * * *"
        if enabled
        else "AI Model Sync Scheduler is disabled (MODEL_SYNC_ENABLED=false)"
    )
    assert expected_log in caplog.messages
    # A tick at the scheduled time asks for one run of the sync job.
    tick = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    with build_schedule_context(scheduled_execution_time=tick) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    # Dagster leaves a schedule's run request without a job name: it runs the schedule's own
    # job, which is SYNC_JOB_NAME (asserted above).
    assert request.job_name is None
    assert request.tags == {"dagster/schedule_name": SCHEDULE_NAME}


def test_job_selects_all_three_assets_and_the_stats_check():
    defs = build_definitions(Settings())
    job = defs.resolve_job_def(SYNC_JOB_NAME)
    keys = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert keys == {"gateway_models_raw", "ai_models_frame", "ai_models"}
    checks = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert "ai_models_sync_stats" in checks
    assert job.executor_def.name == "in_process"


def test_freshness_policy_window_follows_the_setting():
    defs = build_definitions(Settings(freshness_hours=30))
    policy = defs.resolve_asset_graph().get(AssetKey("ai_models")).freshness_policy
    assert policy == FreshnessPolicy.time_window(fail_window=timedelta(hours=30))


def test_env_var_references_stay_references_in_the_ui(monkeypatch):
    """A database URL given by env var is shown as EnvVar, not as the secret value."""
    monkeypatch.setenv("MODEL_SYNC_DATABASE_URL", "postgresql://user:secret@db.internal/x")
    defs = build_definitions(Settings.from_env())
    resource = defs.resources["catalog"]
    assert "secret" not in repr(resource.database_url)
    assert Path(resource.data_dir).is_absolute()
