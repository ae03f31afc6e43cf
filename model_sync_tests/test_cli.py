"""The README's main command, run end-to-end in a subprocess like a new user would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from model_sync_tests.conftest import run_cli
from model_sync_tests.snapshots import snapshot_path

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
