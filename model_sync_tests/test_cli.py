"""The README's main command and the ``model-sync`` commands, run end-to-end in a subprocess
like a new user would."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from model_sync_tests.conftest import run_cli
from model_sync_tests.snapshots import OPENROUTER_DIR, snapshot_path

README = Path(__file__).resolve().parent.parent / "README.md"
SNAPSHOT = "models-2025-11-18.json"


def readme_main_command() -> list[str]:
    """The first ``dagster asset materialize`` line of README.md, split like a shell would."""
    import shlex

    for line in README.read_text().splitlines():
        if line.strip().startswith("dagster asset materialize"):
            return shlex.split(line.strip())
    raise AssertionError("README.md shows no `dagster asset materialize` command")


def run_main_command(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    command = readme_main_command()
    executable = shutil.which(command[0], path=str(Path(sys.executable).parent))
    assert executable, "the dagster console script is not installed next to this Python"
    return subprocess.run(
        [executable, *command[1:]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_SYNC_", "DAGSTER_"))}
    env.update(overrides)
    return env


def stats_line(output: str) -> str:
    match = re.search(r"Stats: total=\d+, created=\d+, updated=\d+.*failed=\d+", output)
    assert match, output[-3000:]
    return match.group(0)


def test_main_command_syncs_a_saved_response_into_the_configured_database(
    database_url, db, tmp_path
):
    env = clean_env(
        MODEL_SYNC_DATABASE_URL=database_url,
        MODEL_SYNC_GATEWAY_URL=snapshot_path(SNAPSHOT).as_uri(),
    )
    first = run_main_command(env, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "created=144" in stats_line(first.stderr)
    assert "Database Stats: 144 active models, 0 inactive models" in first.stderr
    assert db.execute("SELECT count(*) FROM ai_models WHERE is_active").fetchone() == (144,)

    second = run_main_command(env, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "created=0, updated=0, unchanged=144" in stats_line(second.stderr)
    # The same file again: verified unchanged, nothing written.
    assert "Response unchanged since the last sync" in second.stderr
    assert db.execute(
        "SELECT count(*), count(*) FILTER (WHERE unchanged_body) FROM model_sync_runs "
        "WHERE status = 'success'"
    ).fetchone() == (2, 1)


def test_main_command_fails_clearly_and_keeps_the_catalog_on_a_broken_response(
    database_url, db, tmp_path
):
    env = clean_env(
        MODEL_SYNC_DATABASE_URL=database_url,
        MODEL_SYNC_GATEWAY_URL=str(snapshot_path(SNAPSHOT)),
    )
    assert run_main_command(env, tmp_path).returncode == 0
    before = db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall()
    broken = tmp_path / "broken.json"
    broken.write_text('{"object": "list", "data": [')
    failed = run_main_command({**env, "MODEL_SYNC_GATEWAY_URL": str(broken)}, tmp_path)
    assert failed.returncode != 0
    assert "not JSON" in failed.stderr and str(broken) in failed.stderr
    assert db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall() == before


@pytest.mark.timeout(600)
def test_main_command_without_a_database_url_uses_an_embedded_postgres(tmp_path):
    """A fresh machine with no Postgres: the server is started, reused, and reachable."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = clean_env(DAGSTER_HOME=str(home), MODEL_SYNC_GATEWAY_URL=str(snapshot_path(SNAPSHOT)))
    try:
        first = run_main_command(env, tmp_path)
        assert first.returncode == 0, first.stderr[-3000:]
        pgdata = home / "model_sync" / "pgdata"
        assert f"Started embedded PostgreSQL in {pgdata}" in first.stderr
        url = re.search(r"connect with: psql '([^']+)'", first.stderr).group(1)
        with psycopg.connect(url) as db:
            assert db.execute("SELECT count(*) FROM ai_models").fetchone() == (144,)

        second = run_main_command(env, tmp_path)
        assert second.returncode == 0, second.stderr[-3000:]
        assert f"Reusing embedded PostgreSQL in {pgdata}" in second.stderr
        assert "created=0, updated=0, unchanged=144" in stats_line(second.stderr)
    finally:
        stop = run_cli("stop-db", env=env, timeout=120)
        assert stop.returncode == 0, stop.stderr


def test_model_sync_sync_is_a_shorthand_for_the_main_command(database_url, db, tmp_path):
    env = clean_env(
        MODEL_SYNC_DATABASE_URL=database_url,
        MODEL_SYNC_GATEWAY_URL=str(snapshot_path(SNAPSHOT)),
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    )
    completed = run_cli("sync", env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "created=144" in stats_line(completed.stderr)
    assert db.execute("SELECT count(*) FROM ai_models").fetchone() == (144,)


# --- model-sync backfill --source ----------------------------------------------------------------

OPENROUTER_FILES = ("models-2026-07-14.json", "models-2026-08-01.json")


def openrouter_folder(tmp_path: Path) -> Path:
    """The two vendored OpenRouter responses, alone in a folder (dated by their file names)."""
    folder = tmp_path / "openrouter"
    folder.mkdir()
    for name in OPENROUTER_FILES:
        shutil.copy(OPENROUTER_DIR / name, folder / name)
    return folder


def reported(output: str) -> list[str]:
    """A command's own lines: without the INFO log lines (alembic, model_sync) and, on stdout,
    without the indented price warnings under each synced file."""
    return [
        line
        for line in output.splitlines()
        if not line.startswith(("INFO ", "  warning: ")) and line.strip()
    ]


def served_ids(name: str) -> set[str]:
    return {model["id"] for model in json.loads((OPENROUTER_DIR / name).read_bytes())["data"]}


def test_backfill_with_source_loads_another_sources_saved_responses(database_url, db, tmp_path):
    """``--source openrouter`` reads the files as OpenRouter serves them, oldest first, each
    dated by its file name; rows, history and archive are OpenRouter's."""
    folder = openrouter_folder(tmp_path)
    first, second = (served_ids(name) for name in OPENROUTER_FILES)

    env = clean_env(MODEL_SYNC_DATABASE_URL=database_url)
    completed = run_cli("backfill", str(folder), "--source", "openrouter", env=env)

    assert completed.returncode == 0, completed.stderr[-3000:]
    first_line, second_line = reported(completed.stdout)
    assert first_line == (
        f"models-2026-07-14.json @ 2026-07-14T00:00:00+00:00: created={len(first)} updated=0 "
        f"deactivated=0 reactivated=0 failed=0 stale=0 versions_opened={len(first)}"
    )
    assert second_line.startswith(
        f"models-2026-08-01.json @ 2026-08-01T00:00:00+00:00: created={len(second - first)} "
    )
    assert f" deactivated={len(first - second)} reactivated=0 failed=0 stale=0 " in second_line

    assert db.execute(
        "SELECT source, count(*), count(*) FILTER (WHERE is_active) FROM ai_models GROUP BY source"
    ).fetchall() == [("openrouter", len(first | second), len(second))]
    active = {row[0] for row in db.execute("SELECT model_id FROM ai_models WHERE is_active")}
    assert active == second
    assert set(db.execute("SELECT source, sha256 FROM response_archive").fetchall()) == {
        ("openrouter", hashlib.sha256((OPENROUTER_DIR / name).read_bytes()).hexdigest())
        for name in OPENROUTER_FILES
    }
    opened = db.execute(
        "SELECT DISTINCT source, to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
        "FROM ai_model_versions ORDER BY 2"
    ).fetchall()
    assert opened == [("openrouter", "2026-07-14 00:00"), ("openrouter", "2026-08-01 00:00")]


def test_backfill_defaults_to_the_first_enabled_source(database_url, db, tmp_path):
    """Without ``--source`` the files are the first enabled source's (MODEL_SYNC_SOURCES)."""
    folder = openrouter_folder(tmp_path)
    env = clean_env(MODEL_SYNC_DATABASE_URL=database_url, MODEL_SYNC_SOURCES="openrouter,vercel")

    completed = run_cli("backfill", str(folder), env=env)

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert [line.split(" @ ")[0] for line in reported(completed.stdout)] == list(OPENROUTER_FILES)
    assert db.execute("SELECT DISTINCT source FROM ai_models").fetchall() == [("openrouter",)]


def test_backfill_of_another_sources_files_as_vercel_stops_clearly(database_url, db, tmp_path):
    """By default (Vercel only) OpenRouter's files are not Vercel's envelope: the backfill stops
    at the first file, naming it and what was wrong, and writes no catalog row."""
    folder = openrouter_folder(tmp_path)
    env = clean_env(MODEL_SYNC_DATABASE_URL=database_url)

    completed = run_cli("backfill", str(folder), env=env)

    assert completed.returncode == 1
    [line] = reported(completed.stderr)
    assert line.startswith(
        'backfill stopped: expected {"object": "list", "data": [...]}, got keys '
        "['data', 'links', 'total_count'] with object=None and data of type list "
        f"(url: {(folder / OPENROUTER_FILES[0]).as_uri()}, no HTTP status, body starts: "
    )
    assert reported(completed.stdout) == []
    assert db.execute("SELECT count(*) FROM ai_models").fetchone() == (0,)


def test_backfill_with_an_unknown_source_names_the_known_ones(database_url, db, tmp_path):
    folder = openrouter_folder(tmp_path)
    env = clean_env(MODEL_SYNC_DATABASE_URL=database_url)

    completed = run_cli("backfill", str(folder), "--source", "nosuch", env=env)

    assert completed.returncode == 2
    assert reported(completed.stderr) == [
        "backfill stopped: unknown source 'nosuch'; known: vercel, openrouter, models_dev, litellm"
    ]
    assert db.execute("SELECT count(*) FROM response_archive").fetchone() == (0,)


# --- Configuration errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"MODEL_SYNC_HTTP_MAX_RETRIES": "three"},
            "configuration error: MODEL_SYNC_HTTP_MAX_RETRIES='three': ",
            id="bad-value",
        ),
        pytest.param(
            {"MODEL_SYNC_WEBHOOK_URLS": "https://hooks.example/models"},
            "configuration error: MODEL_SYNC_WEBHOOK_URLS is set but MODEL_SYNC_WEBHOOK_SECRET "
            "is not",
            id="webhook-urls-without-secret",
        ),
        pytest.param(
            {"MODEL_SYNC_ANOMALY_FAIL_FACTOR": "2"},
            "configuration error: MODEL_SYNC_ANOMALY_WARN_FACTOR=3.0 is above "
            "MODEL_SYNC_ANOMALY_FAIL_FACTOR=2.0",
            id="warn-factor-above-fail-factor",
        ),
    ],
)
def test_configuration_errors_are_one_line_naming_the_variable(env, message):
    """Any command: a variable the settings refuse is reported in one line (no traceback),
    with exit status 2, before anything runs."""
    completed = run_cli("db-url", env=clean_env(**env), timeout=120)

    assert completed.returncode == 2, completed.stderr[-3000:]
    assert completed.stderr.startswith(message), completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
