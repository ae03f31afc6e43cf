"""The HTTP API deployed exactly as the README documents it: ``model-sync-api`` as a process
with the variables a user exports, on a real port on loopback, submitting runs to the Dagster
instance of ``deploy/dagster.yaml`` (Postgres storage, queued runs) with ``dagster-daemon``
running — and bounded when the database misbehaves, hardened against oversized headers,
refusing bad configurations with one line."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from model_sync_tests.apitools import (
    HEALTH,
    JWKS_KID,
    REPO,
    RUNS,
    SECRET,
    STATS,
    SUBJECT,
    SYNC,
    TRIGGER_TAG,
    Keys,
    bearer,
    clean_env,
    executable,
    hs256_headers,
    make_keys,
    sign,
    start,
    start_api,
    wait_healthy,
)
from model_sync_tests.snapshots import snapshot_path

SNAPSHOT = "models-2025-11-18.json"
SNAPSHOT_SIZE = 144
DEPLOY_CONFIG = REPO / "deploy" / "dagster.yaml"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("deployed_keys"))


@pytest.fixture
def deploy(database_url, tmp_path, monkeypatch):
    """Start a deployment: $DAGSTER_HOME with deploy/dagster.yaml on the test database and the
    daemon running; returns the environment the README has a user export (overrides apply to
    the whole deployment — the code location's settings are the daemon's). The schedule and
    sensors are left stopped (MODEL_SYNC_ENABLED=false) so only the API starts runs here."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_CONFIG, home / "dagster.yaml")
    daemons = []
    # This test process reads the same instance back (DagsterInstance.from_config).
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", database_url)
    monkeypatch.setenv("DAGSTER_MAX_CONCURRENT_RUNS", "4")

    def started(**overrides: str) -> dict[str, str]:
        env = clean_env(
            **{
                "DAGSTER_HOME": str(home),
                "DAGSTER_POSTGRES_URL": database_url,
                "DAGSTER_MAX_CONCURRENT_RUNS": "4",
                "MODEL_SYNC_DATABASE_URL": database_url,
                "MODEL_SYNC_GATEWAY_URL": str(snapshot_path(SNAPSHOT)),
                "MODEL_SYNC_ENABLED": "false",
                **overrides,
            }
        )
        command = [executable("dagster-daemon"), "run", "-w", "workspace.yaml"]
        daemons.append(start(command, env, REPO, tmp_path / "daemon.log"))
        return env

    yield started
    for daemon in daemons:
        daemon.stop()


@pytest.fixture
def deployment(deploy) -> dict[str, str]:
    return deploy()


def token_for(server: str, keys: Keys) -> str:
    if server == "rsa_pem":
        return sign(keys.rsa, "RS256")
    if server == "jwks":
        return sign(keys.rsa, "RS256", kid=JWKS_KID)
    return sign(SECRET, "HS256")


def auth_env(server: str, keys: Keys) -> dict[str, str]:
    return {
        "secret": {"MODEL_SYNC_JWT_SECRET": SECRET},
        "rsa_pem": {"MODEL_SYNC_JWT_PUBLIC_KEY_FILE": str(keys.rsa_pem)},
        "jwks": {"MODEL_SYNC_JWT_JWKS_FILE": str(keys.jwks)},
    }[server]


def test_every_endpoint_answers_as_documented(deployment, keys, db, tmp_path):
    """One deployment, the API configured in each documented way in turn (HS256 secret, RS256
    PEM, JWKS): every endpoint, each time. The first sync creates the catalog; the later ones
    find the same response (verified unchanged)."""
    for number, server in enumerate(["secret", "rsa_pem", "jwks"]):
        env = {**deployment, **auth_env(server, keys)}
        api, url = start_api(env, tmp_path / f"api-{server}.log")
        try:
            wait_healthy(api, url)
            check_every_endpoint(api, url, server, keys, deployment, db, first=number == 0)
        finally:
            assert api.stop() < 10
    assert [row[0] for row in db.execute("SELECT status_code FROM api_sync_requests")] == [200] * 3


def check_every_endpoint(api, url, server, keys, deployment, db, *, first: bool) -> None:
    headers = bearer(token_for(server, keys))
    assert httpx.head(f"{url}{HEALTH}").status_code == 200
    assert httpx.get(f"{url}{HEALTH}").json() == {"status": "ok"}
    schema = httpx.get(f"{url}/openapi.json").json()
    assert {SYNC, STATS, HEALTH, f"{RUNS}/{{run_id}}", "/api/v1/costs"} == set(schema["paths"])

    response = httpx.post(f"{url}{SYNC}", headers=headers, timeout=180)
    assert response.status_code == 200, (response.text, api.output())
    result = response.json()["result"]
    counts = {k: result[k] for k in ("total", "created", "updated", "unchanged", "failed")}
    assert counts == {
        "total": SNAPSHOT_SIZE,
        "created": SNAPSHOT_SIZE if first else 0,
        "updated": 0,
        "unchanged": 0 if first else SNAPSHOT_SIZE,
        "failed": 0,
    }
    run_id = result["runId"]
    # The run went through the instance's queue: the daemon launched it, in run storage.
    with DagsterInstance.from_config(deployment["DAGSTER_HOME"]) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.tags[TRIGGER_TAG] == "api"
        events = [
            record.event_log_entry.dagster_event.event_type_value
            for record in instance.get_records_for_run(run_id).records
            if record.event_log_entry.dagster_event is not None
        ]
        assert events.index("PIPELINE_ENQUEUED") < events.index("PIPELINE_START")
    # The stats are the table's counts — the endpoint the old module's clients poll.
    stats = httpx.get(f"{url}{STATS}", headers=headers)
    assert stats.status_code == 200, (stats.text, api.output())
    active, inactive = db.execute(
        "SELECT count(*) FILTER (WHERE is_active), count(*) FILTER (WHERE NOT is_active) "
        "FROM ai_models"
    ).fetchone()
    assert stats.json()["activeModels"] == active == SNAPSHOT_SIZE
    assert stats.json()["totalModels"] == active + inactive
    assert stats.json()["lastSyncDate"].endswith("Z")
    again = httpx.get(f"{url}{RUNS}/{run_id}", headers=headers)
    assert again.status_code == 200 and again.json()["result"] == result
    # An id no run can have: the Postgres-backed instance raised on the NUL (a 500) before.
    for unknown in ("0" * 36, "a%00b"):
        missing = httpx.get(f"{url}{RUNS}/{unknown}", headers=headers)
        assert (missing.status_code, missing.json()) == (404, {"error": "not found"}), unknown
    assert db.execute(
        "SELECT subject, status_code, outcome FROM api_sync_requests WHERE run_id = %s",
        (run_id,),
    ).fetchall() == [(SUBJECT, 200, "success")]
    # The cost of usage at the catalog's prices: openai/gpt-4o of 2025-11-18 is
    # "0.0000025" input and "0.00001" output per token.
    record = {
        "source": "vercel",
        "model_id": "openai/gpt-4o",
        "usage": {"input_tokens": 1000, "output_tokens": 500},
    }
    costs = httpx.post(f"{url}/api/v1/costs", headers=headers, json={"records": [record]})
    assert costs.status_code == 200, costs.text
    [priced] = costs.json()["results"]
    assert priced["cost"]["total"] == "0.0075" and priced["error"] is None
    # README "Limits": the body is read after the token, and only up to 1 MiB.
    limit = 1024 * 1024
    body = json.dumps({"records": [record]}).encode()
    padded = {size: body + b" " * (size - len(body)) for size in (limit, limit + 1)}
    json_type = {"Content-Type": "application/json"}
    no_token = httpx.post(f"{url}/api/v1/costs", headers=json_type, content=padded[limit + 1])
    assert (no_token.status_code, no_token.json()) == (401, {"error": "unauthorized"})
    at_limit = httpx.post(
        f"{url}/api/v1/costs", headers={**headers, **json_type}, content=padded[limit]
    )
    assert (
        at_limit.status_code == 200 and at_limit.json()["results"][0]["cost"]["total"] == "0.0075"
    )
    over = httpx.post(
        f"{url}/api/v1/costs", headers={**headers, **json_type}, content=padded[limit + 1]
    )
    assert over.status_code == 413, over.text


def test_two_replicas_start_exactly_one_sync(deployment, db, tmp_path):
    """Two API processes sharing the instance and the database, asked at the same moment."""
    env = {**deployment, "MODEL_SYNC_JWT_SECRET": SECRET}
    first, first_url = start_api(env, tmp_path / "api1.log")
    second, second_url = start_api(env, tmp_path / "api2.log")
    try:
        wait_healthy(first, first_url)
        wait_healthy(second, second_url)
        answers: dict[str, httpx.Response] = {}
        barrier = threading.Barrier(2)

        def post(name: str, url: str) -> None:
            barrier.wait()
            answers[name] = httpx.post(f"{url}{SYNC}", headers=hs256_headers(), timeout=180)

        threads = [
            threading.Thread(target=post, args=("first", first_url)),
            threading.Thread(target=post, args=("second", second_url)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(200)
        statuses = sorted(response.status_code for response in answers.values())
        assert statuses == [200, 409], {k: v.text for k, v in answers.items()}
        [done] = [r.json() for r in answers.values() if r.status_code == 200]
        [busy] = [r.json() for r in answers.values() if r.status_code == 409]
        assert busy == {
            "success": False,
            "error": "a sync is already running",
            "runId": done["result"]["runId"],
        }
        assert sorted(
            row[0] for row in db.execute("SELECT status_code FROM api_sync_requests")
        ) == [200, 409]
    finally:
        first.stop()
        second.stop()


def test_a_slow_run_answers_202_then_its_result(deployment, tmp_path):
    env = {**deployment, "MODEL_SYNC_JWT_SECRET": SECRET, "MODEL_SYNC_API_SYNC_WAIT_SECONDS": "0"}
    api, url = start_api(env, tmp_path / "api.log")
    try:
        wait_healthy(api, url)
        accepted = httpx.post(f"{url}{SYNC}", headers=hs256_headers(), timeout=60)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["runId"]
        assert accepted.json() == {
            "success": False,
            "error": "the sync is still running",
            "runId": run_id,
        }
        deadline = time.monotonic() + 180
        while True:
            polled = httpx.get(f"{url}{RUNS}/{run_id}", headers=hs256_headers())
            if polled.status_code != 202:
                break
            assert time.monotonic() < deadline, api.output()
            time.sleep(1)
        assert polled.status_code == 200, polled.text
        assert polled.json()["result"]["created"] == SNAPSHOT_SIZE
    finally:
        api.stop()


def test_a_failing_source_answers_502_through_the_queue(deploy, tmp_path):
    missing = tmp_path / "no-such-response.json"
    env = {**deploy(MODEL_SYNC_GATEWAY_URL=str(missing)), "MODEL_SYNC_JWT_SECRET": SECRET}
    api, url = start_api(env, tmp_path / "api.log")
    try:
        wait_healthy(api, url)
        response = httpx.post(f"{url}{SYNC}", headers=hs256_headers(), timeout=180)
        assert response.status_code == 502, response.text
        body = response.json()
        assert body["success"] is False and str(missing) in body["error"]
        with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            assert instance.get_run_by_id(body["runId"]).status == DagsterRunStatus.FAILURE
    finally:
        api.stop()


# --- a database that accepts connections and never answers ----------------------------------


@pytest.fixture
def silent_database() -> Iterator[str]:
    """A TCP server on loopback that accepts every connection and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
                accepted.append(connection)
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"postgresql://postgres@127.0.0.1:{port}/catalog"
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    server.close()


def test_a_silent_database_gives_bounded_answers_and_a_prompt_shutdown(silent_database, tmp_path):
    timeout = 2
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(
        DAGSTER_HOME=str(home),
        MODEL_SYNC_JWT_SECRET=SECRET,
        MODEL_SYNC_DATABASE_URL=silent_database,
        MODEL_SYNC_DB_CONNECT_TIMEOUT_SECONDS=str(timeout),
        MODEL_SYNC_GATEWAY_URL=str(snapshot_path(SNAPSHOT)),
        MODEL_SYNC_ENABLED="false",
    )
    api, url = start_api(env, tmp_path / "api.log")
    try:
        wait_healthy(api, url)
        started = time.monotonic()
        stats = httpx.get(f"{url}{STATS}", headers=hs256_headers(), timeout=60)
        assert time.monotonic() - started < timeout + 1
        assert (stats.status_code, stats.json()) == (503, {"error": "database unavailable"})
        started = time.monotonic()
        sync = httpx.post(f"{url}{SYNC}", headers=hs256_headers(), timeout=60)
        # The submission's lock needs the database; recording the request tries once more.
        assert time.monotonic() - started < 2 * timeout + 1
        assert sync.status_code == 503
        assert sync.json() == {"success": False, "error": "database unavailable", "runId": None}
        # Nothing of the database's address reaches the caller; the log has it.
        port = silent_database.rsplit(":", 1)[1].split("/")[0]
        assert port not in stats.text + sync.text and "catalog" not in stats.text + sync.text
        # The lock was released: asking again gets the same bounded answer, not a 409.
        assert httpx.post(f"{url}{SYNC}", headers=hs256_headers(), timeout=60).status_code == 503
    finally:
        assert api.stop() < 10


# --- hardening ----------------------------------------------------------------------------


def test_oversized_headers_are_refused_before_any_token_is_read(database_url, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(
        DAGSTER_HOME=str(home), MODEL_SYNC_JWT_SECRET=SECRET, MODEL_SYNC_DATABASE_URL=database_url
    )
    api, url = start_api(env, tmp_path / "api.log")
    try:
        wait_healthy(api, url)
        for size in (17 * 1024, 64 * 1024 * 1024):
            token = "x" * size
            started = time.monotonic()
            response = httpx.get(f"{url}{STATS}", headers=bearer(token), timeout=60)
            assert response.status_code == 431, size
            assert response.json() == {"error": "request header fields too large"}
            assert time.monotonic() - started < 10
        # Just under the limit is read, and refused as a bad token: 401, logged in short.
        almost = httpx.get(f"{url}{STATS}", headers=bearer("y" * 15_000), timeout=30)
        assert almost.status_code == 401
        refused = [line for line in api.output().splitlines() if "401 #" in line]
        assert len(refused) == 1 and len(refused[0]) < 400
        assert "x" * 100 not in api.output() and "y" * 100 not in api.output()
    finally:
        api.stop()


@pytest.mark.parametrize(
    ("variable", "content", "expected"),
    [
        ("MODEL_SYNC_JWT_SECRET", "short-secret", "MODEL_SYNC_JWT_SECRET is 12 bytes"),
        ("MODEL_SYNC_JWT_PUBLIC_KEY_FILE", None, "cannot read it"),
        ("MODEL_SYNC_JWT_PUBLIC_KEY_FILE", "not a key\n", "not a usable PEM public key"),
        ("MODEL_SYNC_JWT_JWKS_FILE", "{not json", "not a usable JWKS"),
        ("MODEL_SYNC_JWT_JWKS_FILE", '{"keys": []}', "not a usable JWKS"),
    ],
    ids=["short_secret", "missing_key_file", "bad_pem", "jwks_not_json", "jwks_empty"],
)
def test_a_bad_configuration_is_refused_with_one_line(tmp_path, variable, content, expected):
    home = tmp_path / "home"
    home.mkdir()
    value = content
    if variable != "MODEL_SYNC_JWT_SECRET":
        path = tmp_path / "key-file"
        if content is not None:
            path.write_text(content)
        value = str(path)
    env = clean_env(DAGSTER_HOME=str(home), **{variable: value})
    api, _ = start_api(env, tmp_path / "api.log")
    assert api.popen.wait(timeout=60) == 2
    output = api.output().strip().splitlines()
    assert len(output) == 1, output
    [line] = output
    assert line.startswith("configuration error: ") and variable in line and expected in line
    if variable != "MODEL_SYNC_JWT_SECRET":
        assert str(tmp_path / "key-file") in line
    assert "Traceback" not in api.output()


def test_tokens_with_text_times_or_too_long_lives_are_refused(database_url, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(
        DAGSTER_HOME=str(home),
        MODEL_SYNC_JWT_SECRET=SECRET,
        MODEL_SYNC_DATABASE_URL=database_url,
        MODEL_SYNC_JWT_MAX_LIFETIME_SECONDS="600",
    )
    api, url = start_api(env, tmp_path / "api.log")
    now = int(time.time())
    try:
        wait_healthy(api, url)

        def stats(**claims) -> int:
            token = sign(SECRET, "HS256", {"sub": SUBJECT, **claims})
            return httpx.get(f"{url}{STATS}", headers=bearer(token)).status_code

        assert stats(iat=now, exp=now + 600) == 200  # exactly the maximum lifetime
        assert stats(iat=now, exp=now + 601) == 401  # one second more
        assert stats(iat=now, exp=str(now + 300)) == 401  # exp as a string
        assert stats(iat=str(now), exp=now + 300) == 401
        assert stats(exp=now + 300) == 401  # no iat: the lifetime cannot be checked
        assert len([line for line in api.output().splitlines() if "401 #" in line]) == 4
    finally:
        api.stop()
