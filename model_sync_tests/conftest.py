"""Shared test fixtures: a real Postgres database per test and a real HTTP server on loopback.

Every test that touches the catalog gets its own database, created from a template that is
migrated once per session, so each starts from a known state and tests cannot leak into each
other. Set ``MODEL_SYNC_TEST_ADMIN_URL`` to point the suite at another server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import psycopg
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult
from sqlalchemy import Engine

from model_sync.definitions import build_definitions
from model_sync.schedules import SYNC_JOB_NAME
from model_sync.settings import Settings
from model_sync.store import database, migrate

ADMIN_URL = os.environ.get(
    "MODEL_SYNC_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.exit(
            f"cannot reach the test Postgres at {ADMIN_URL} ({error}); start it, or set "
            "MODEL_SYNC_TEST_ADMIN_URL",
            returncode=3,
        )


def _url_for(name: str) -> str:
    base = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    user = base.get("user", "postgres")
    host = base.get("host", "127.0.0.1")
    port = base.get("port", "5432")
    return f"postgresql://{user}@{host}:{port}/{name}"


def _drop(name: str) -> None:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A database migrated to head once; each test's database is a copy of it."""
    name = f"model_sync_tpl_{os.getpid()}"
    _drop(name)
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = database.engine_for(database.sqlalchemy_url(_url_for(name)))
    migrate.upgrade(engine)
    database.dispose_engines()
    yield name
    _drop(name)


def _new_database(template: str | None) -> str:
    name = f"model_sync_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        suffix = f' TEMPLATE "{template}"' if template else ""
        admin.execute(f'CREATE DATABASE "{name}"{suffix}')
    return name


@pytest.fixture
def database_url(template_database: str) -> Iterator[str]:
    """A fresh, migrated, empty catalog database (a libpq URL)."""
    name = _new_database(template_database)
    yield _url_for(name)
    database.dispose_engines()
    _drop(name)


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    """A fresh database with no schema at all, for migration tests."""
    name = _new_database(None)
    yield _url_for(name)
    database.dispose_engines()
    _drop(name)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return database.engine_for(database.sqlalchemy_url(database_url))


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit psycopg connection to the test database, for assertions and edits."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    """Settings for a run against the test database; tests replace the gateway URL."""
    return Settings(
        database_url=database_url,
        gateway_url="http://127.0.0.1:9/unset",
        data_dir=tmp_path / "data",
        http_timeout_seconds=2.0,
        http_max_retries=2,
        http_backoff_seconds=0.05,
    )


SyncRunner = Callable[..., ExecuteInProcessResult]


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """An ephemeral Dagster instance; its event log holds each run's log lines."""
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


@pytest.fixture
def run_sync(settings: Settings, instance: DagsterInstance) -> SyncRunner:
    """Run the real sync job in process: ``run_sync(gateway_url, **setting_overrides)``."""

    def run(gateway_url: str, **overrides) -> ExecuteInProcessResult:
        defs = build_definitions(replace(settings, gateway_url=gateway_url, **overrides))
        job = defs.resolve_job_def(SYNC_JOB_NAME)
        return job.execute_in_process(instance=instance, raise_on_error=False)

    return run


def run_cli(*args: str, env: dict[str, str], timeout: float = 300):
    """Run ``model-sync <args>`` (as ``python -m model_sync.cli``) like a user would."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "model_sync.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_logs(instance: DagsterInstance, result: ExecuteInProcessResult) -> list[str]:
    """Every user log message of one run, in order."""
    return [entry.user_message for entry in instance.all_logs(result.run_id)]
