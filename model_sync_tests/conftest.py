"""Shared test fixtures: a real Postgres database per test and a real HTTP server on loopback.

Every test that touches the catalog gets its own database, created from a template that is
migrated once per session, so each starts from a known state and tests cannot leak into each
other. Set ``MODEL_SYNC_TEST_ADMIN_URL`` to point the suite at another server.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult
from sqlalchemy import Engine

from model_sync.definitions import build_definitions
from model_sync.schedules import SYNC_JOB_NAME
from model_sync.settings import ApiSettings, HttpSettings, Settings, SyncPolicy, WebhookSettings
from model_sync.store import database, migrate

ADMIN_URL_VARIABLE = "MODEL_SYNC_TEST_ADMIN_URL"
LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _embedded_admin_url() -> str:
    """A fresh machine has no Postgres: start the embedded one the project ships (pgserver),
    once per test session, in a temporary folder it removes again at exit."""
    import atexit
    import shutil
    import tempfile

    import pgserver

    folder = Path(tempfile.mkdtemp(prefix="model_sync_test_pg_"))
    server = pgserver.get_server(folder / "pgdata", cleanup_mode="stop")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    _EMBEDDED.append(server)  # keeps the handle (and so the server) alive for the session
    return server.get_uri("postgres")


_EMBEDDED: list = []


def _admin_url() -> str:
    """``MODEL_SYNC_TEST_ADMIN_URL`` when set (an unreachable one fails clearly); else the
    local server on 127.0.0.1:5432; else the embedded Postgres."""
    explicit = (os.environ.get(ADMIN_URL_VARIABLE) or "").strip()
    if explicit:
        return explicit
    if _listening("127.0.0.1", 5432):
        return LOCAL_ADMIN_URL
    return _embedded_admin_url()


ADMIN_URL = _admin_url()


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.exit(
            f"cannot reach the test Postgres at {ADMIN_URL} ({error}); start it, or set "
            f"{ADMIN_URL_VARIABLE}",
            returncode=3,
        )


def _url_for(name: str) -> str:
    """The URL of database ``name`` on the test server (TCP, or the embedded server's socket)."""
    base = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    user = base.get("user") or "postgres"
    host = base.get("host") or "127.0.0.1"
    port = base.get("port") or "5432"
    if host.startswith("/"):
        return f"postgresql://{user}@/{name}?host={quote(host, safe='')}&port={port}"
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


# The settings tests override, by their flat names, and the group each belongs to.
_GROUPS = {
    "http": ("http_", HttpSettings, {"max_body_bytes": "max_body_bytes"}),
    "sync": ("", SyncPolicy, {}),
    "webhooks": ("webhook_", WebhookSettings, {}),
    "api": ("", ApiSettings, {}),
}


def configure(settings: Settings, gateway_url: str | None = None, **overrides) -> Settings:
    """``settings`` with the Vercel source at ``gateway_url`` and settings overridden by flat
    name (``max_deactivation_share=0.7``, ``http_timeout_seconds=30``, ``webhook_urls=[…]``)."""
    if gateway_url is not None:
        settings = settings.with_source_urls(vercel=gateway_url)
    top: dict = {}
    groups: dict[str, dict] = {}
    for name, value in overrides.items():
        for group, (prefix, model, aliases) in _GROUPS.items():
            field = aliases.get(name) or (name[len(prefix) :] if name.startswith(prefix) else name)
            if field in model.model_fields:
                groups.setdefault(group, {})[field] = value
                break
        else:
            top[name] = value
    for group, values in groups.items():
        top[group] = getattr(settings, group).model_copy(update=values)
    return settings.model_copy(update=top)


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    """Settings for a run against the test database; tests set the gateway URL."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        http=HttpSettings(timeout_seconds=2.0, max_retries=2, backoff_seconds=0.05),
    ).with_source_urls(vercel="http://127.0.0.1:9/unset")


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
        defs = build_definitions(configure(settings, gateway_url, **overrides))
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
