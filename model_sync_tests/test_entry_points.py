"""The ways people run this project, run the documented way: each asset materialized alone
from the command line, ``dg launch``, and the test suite itself on a machine with no Postgres.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psycopg
import pytest
from pytest_httpserver import HTTPServer

from model_sync_tests.apitools import REPO, clean_env, executable, free_port, start
from model_sync_tests.snapshots import snapshot_bytes, snapshot_path

OLD, NEW = "models-2025-11-18.json", "models-2026-03-05.json"


def materialize(selection: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``dagster asset materialize -m model_sync.definitions --select <selection>``."""
    return subprocess.run(
        [executable("dagster"), "asset", "materialize", "-m", "model_sync.definitions"]
        + ["--select", selection],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def user_env(database_url, tmp_path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    return clean_env(DAGSTER_HOME=str(home), MODEL_SYNC_DATABASE_URL=database_url)


def test_materializing_ai_models_alone_fetches_the_current_response(user_env, db):
    """What the UI's Materialize button does on that one asset: it fetches in the same run and
    never re-applies what an earlier run left behind."""
    first = materialize("*", {**user_env, "MODEL_SYNC_GATEWAY_URL": str(snapshot_path(OLD))})
    assert first.returncode == 0, first.stderr
    alone = materialize(
        "vercel/ai_models", {**user_env, "MODEL_SYNC_GATEWAY_URL": str(snapshot_path(NEW))}
    )
    assert alone.returncode == 0, alone.stderr
    assert f"Fetching models from: {snapshot_path(NEW)}" in alone.stderr
    served = {model["id"] for model in json.loads(snapshot_bytes(NEW))["data"]}
    assert {
        row[0] for row in db.execute("SELECT model_id FROM ai_models WHERE is_active")
    } == served
    # Only the selected asset materialized.
    assert "Materialized value vercel ai_models." in alone.stderr
    assert "Materialized value vercel ai_models_frame." not in alone.stderr


@pytest.mark.parametrize("asset", ["vercel/gateway_models_raw", "vercel/ai_models_frame"])
def test_the_raw_or_frame_asset_alone_reads_the_response_and_writes_no_catalog_row(
    user_env, db, asset
):
    result = materialize(asset, {**user_env, "MODEL_SYNC_GATEWAY_URL": str(snapshot_path(OLD))})
    assert result.returncode == 0, result.stderr
    name = asset.split("/")[1]
    assert f"Materialized value vercel {name}." in result.stderr
    assert db.execute("SELECT count(*) FROM ai_models").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM model_sync_runs").fetchone() == (0,)
    # The fetched body is kept in the archive either way.
    assert db.execute("SELECT byte_count FROM response_archive").fetchall() == [
        (len(snapshot_bytes(OLD)),)
    ]


def test_dg_launch_syncs_every_asset(user_env, db):
    """`dg launch --assets '*'`, the dg twin of the README's main command."""
    result = subprocess.run(
        [executable("dg"), "launch", "--assets", "*"],
        env={**user_env, "MODEL_SYNC_GATEWAY_URL": str(snapshot_path(OLD))},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Stats: total=144, created=144" in result.stderr
    assert db.execute("SELECT count(*) FROM ai_models WHERE is_active").fetchone() == (144,)


# --- the test suite on a machine without Postgres ---------------------------------------------

# Two tests that need a database and an HTTP server: enough to prove the suite's set-up.
PROBE = [
    "model_sync_tests/test_drift.py::test_first_sync_records_a_baseline_without_drift",
    "model_sync_tests/test_price_points.py::test_the_readme_video_query_answers_from_the_catalog",
]


def _in_network_namespace(command: list[str]) -> list[str]:
    """A private network namespace: only its own loopback, so nothing listens on
    127.0.0.1:5432 — a fresh machine, as far as the tests can tell."""
    inner = " ".join(["ip link set lo up &&", "exec", *(f"'{part}'" for part in command)])
    return ["unshare", "--net", "sh", "-c", inner]


def test_the_suite_runs_on_the_embedded_postgres_when_no_server_is_there(tmp_path):
    env = clean_env()
    env.pop("MODEL_SYNC_TEST_ADMIN_URL", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PROBE]
    result = subprocess.run(
        _in_network_namespace(command),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout


def test_an_unreachable_test_server_that_was_asked_for_fails_clearly(tmp_path):
    env = {
        **clean_env(),
        "MODEL_SYNC_TEST_ADMIN_URL": "postgresql://postgres@127.0.0.1:9/postgres",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", PROBE[0]],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "cannot reach the test Postgres at postgresql://postgres@127.0.0.1:9/postgres" in output
    assert os.environ.get("MODEL_SYNC_TEST_ADMIN_URL") != env["MODEL_SYNC_TEST_ADMIN_URL"]


@pytest.fixture
def own_gateway():
    """A gateway server of this test's own, not the session's shared one: ``dagster dev`` polls
    it in the background, and no poll may land in another test's request log."""
    server = HTTPServer(host="127.0.0.1", port=free_port())
    server.start()
    yield server
    server.clear()
    server.stop()


def test_dagster_dev_alone_syncs_a_fresh_database_and_follows_a_change(
    empty_database_url, own_gateway: HTTPServer, tmp_path
):
    """README "Fresh within a minute": `dagster dev` with nothing else running keeps the catalog
    fresh. On a new machine the database has no schema yet: the change sensor's first poll
    launches the first sync, and a changed response is synced on a later poll. (Polling every
    5 s here instead of the default 60 s, through the documented MODEL_SYNC_POLL_SECONDS.)"""
    from werkzeug import Response

    def serve(name: str) -> None:
        own_gateway.clear()
        own_gateway.expect_request("/v1/models").respond_with_response(
            Response(snapshot_bytes(name), content_type="application/json")
        )

    def active() -> int | None:
        try:
            with psycopg.connect(empty_database_url, connect_timeout=5) as db:
                if db.execute("SELECT to_regclass('ai_models')").fetchone() == (None,):
                    return None
                return db.execute("SELECT count(*) FROM ai_models WHERE is_active").fetchone()[0]
        except psycopg.Error:
            return None

    def wait_for(count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while active() != count:
            assert process.popen.poll() is None, process.output()[-3000:]
            assert time.monotonic() < deadline, (active(), process.output()[-3000:])
            time.sleep(1)

    # Models served per snapshot, counted from the raw JSON.
    old_ids = {model["id"] for model in json.loads(snapshot_bytes(OLD))["data"]}
    new_ids = {model["id"] for model in json.loads(snapshot_bytes(NEW))["data"]}
    serve(OLD)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = clean_env(
        DAGSTER_HOME=str(home),
        MODEL_SYNC_DATABASE_URL=empty_database_url,
        MODEL_SYNC_GATEWAY_URL=own_gateway.url_for("/v1/models"),
        MODEL_SYNC_POLL_SECONDS="5",
    )
    command = [executable("dagster"), "dev", "-m", "model_sync.definitions", "-p", str(free_port())]
    process = start(command, env, REPO, tmp_path / "dagster-dev.log")
    try:
        wait_for(len(old_ids), timeout=240)
        serve(NEW)
        # Still active: models the new response dropped are deactivated, not deleted.
        wait_for(len(new_ids), timeout=240)
    finally:
        assert process.stop(timeout=60) < 60
    with psycopg.connect(empty_database_url) as db:
        syncs = db.execute(
            "SELECT count(*) FROM model_sync_runs WHERE status = 'success'"
        ).fetchone()[0]
    assert syncs == 2  # one sync per distinct body, however many polls
