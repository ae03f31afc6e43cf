"""Smoke test of a running deployment: `dagster dev` + the sync job launched over GraphQL.

Starts `dagster dev` on the project in a temporary DAGSTER_HOME, waits for the webserver,
launches `ai_models_sync_job` through Dagster's GraphQL API, waits for it to succeed, checks
the catalog, and stops everything it started — also when something fails.

    python deploy/smoke.py                       # fresh database on the local server
    python deploy/smoke.py --database-url postgresql://postgres@127.0.0.1:5432/catalog
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RESPONSE = REPO / "model_sync_tests" / "fixtures" / "vercel" / "models-2026-03-05.json"
JOB = "ai_models_sync_job"

LAUNCH = """
mutation Launch($selector: JobOrPipelineSelector!) {
  launchRun(executionParams: {selector: $selector, runConfigData: {}}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
STATUS = "query Status($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"
LOCATIONS = """
{ repositoriesOrError { ... on RepositoryConnection {
    nodes { name location { name } jobs { name } } } } }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(client: httpx.Client, query: str, variables: dict | None = None) -> dict:
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    response.raise_for_status()
    payload = response.json()
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


def _wait(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def dev_command(tool: str, port: int) -> list[str]:
    """`dagster dev` on the module, or `dg dev` in the project folder (README shows both)."""
    bin_dir = str(Path(sys.executable).parent)
    if tool == "dg":
        dg = shutil.which("dg", path=bin_dir) or "dg"
        return [dg, "dev", "--host", "127.0.0.1", "--port", str(port)]
    dagster = shutil.which("dagster", path=bin_dir) or "dagster"
    return [dagster, "dev", "-m", "model_sync.definitions", "-h", "127.0.0.1", "-p", str(port)]


def run_smoke(database_url: str, gateway_url: str, timeout: float, tool: str = "dagster") -> None:
    home = Path(tempfile.mkdtemp(prefix="model_sync_smoke_"))
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MODEL_SYNC_DATABASE_URL": database_url,
        "MODEL_SYNC_GATEWAY_URL": gateway_url,
    }
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    command = dev_command(tool, port)
    log = (home / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    print(f"started: {' '.join(command)} (pid {process.pid}, DAGSTER_HOME={home})")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            def webserver_up():
                if process.poll() is not None:
                    raise RuntimeError(f"dagster dev exited with {process.returncode}")
                try:
                    return client.get("/server_info").status_code == 200
                except httpx.HTTPError:
                    return False

            _wait(webserver_up, timeout, "the webserver")
            print("webserver is up")

            def location_loaded():
                data = _graphql(client, LOCATIONS)["repositoriesOrError"]
                for repo in data.get("nodes", []):
                    if any(job["name"] == JOB for job in repo["jobs"]):
                        return repo
                return None

            repo = _wait(location_loaded, timeout, "the code location")
            selector = {
                "repositoryLocationName": repo["location"]["name"],
                "repositoryName": repo["name"],
                "jobName": JOB,
            }
            launched = _graphql(client, LAUNCH, {"selector": selector})["launchRun"]
            if launched["__typename"] != "LaunchRunSuccess":
                raise RuntimeError(f"launch failed: {launched}")
            run_id = launched["run"]["runId"]
            print(f"launched run {run_id}")

            def finished():
                status = _graphql(client, STATUS, {"runId": run_id})["runOrError"]["status"]
                return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

            status = _wait(finished, timeout, f"run {run_id}", interval=2.0)
            if status != "SUCCESS":
                raise RuntimeError(f"run {run_id} ended {status}")
        with psycopg.connect(database_url) as db:
            active = db.execute("SELECT count(*) FROM ai_models WHERE is_active").fetchone()[0]
        if not active:
            raise RuntimeError("the run succeeded but the catalog has no active models")
        print(f"smoke OK: run {run_id} succeeded, {active} active models in the catalog")
    except BaseException:
        log.flush()
        print(f"--- last lines of dagster dev output ({home / 'dagster-dev.log'}) ---")
        print("\n".join((home / "dagster-dev.log").read_text().splitlines()[-40:]))
        raise
    finally:
        _stop(process)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _stop(process: subprocess.Popen) -> None:
    """Stop dagster dev and everything it spawned (webserver, daemon, code server, runs)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    # Its code servers outlive it, waiting out their heartbeat; they are ours to end.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    print("stopped dagster dev")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="catalog database (default: a fresh one)")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "MODEL_SYNC_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="server on which to create the fresh database",
    )
    parser.add_argument("--gateway-url", default=str(DEFAULT_RESPONSE))
    parser.add_argument(
        "--dev", choices=("dagster", "dg"), default="dagster", help="dagster dev, or dg dev"
    )
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    if args.database_url:
        run_smoke(args.database_url, args.gateway_url, args.timeout, args.dev)
        return 0
    name = f"model_sync_smoke_{os.getpid()}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(args.admin_url)
    url = (
        f"postgresql://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}:"
        f"{info.get('port', '5432')}/{name}"
    )
    try:
        run_smoke(url, args.gateway_url, args.timeout, args.dev)
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
