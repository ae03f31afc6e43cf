"""The HTTP API from the caller's side: JWT auth, the two scheduler endpoints, start-up.

Callers of the old module only ever see status codes and JSON bodies, so that is what is
asserted here, against a real Postgres, a real Dagster instance and a real recorded gateway
response. Tokens are minted with PyJWT from key pairs generated per module; the ones PyJWT
refuses to produce (``alg: none``, an RSA public key used as an HMAC secret) are assembled by
hand, the way an attacker would.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import hypothesis
import psycopg
import pytest
import schemathesis
from dagster import DagsterInstance, DagsterRunStatus
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis import GenerationMode

from model_sync.api import SyncBackend, create_app, main
from model_sync.auth import TokenVerifier
from model_sync.dagster_runs import RunSubmitter
from model_sync.settings import Settings
from model_sync_tests.apitools import (
    AUDIENCE,
    DROP,
    HEALTH,
    ISSUER,
    JWKS_KID,
    REQUESTER_TAG,
    RUNS,
    SECRET,
    STATS,
    SUBJECT,
    SYNC,
    TRIGGER_TAG,
    UNAUTHORIZED,
    Keys,
    b64url,
    bearer,
    claims,
    forge,
    free_port,
    hs256_headers,
    make_keys,
    sign,
)
from model_sync_tests.conftest import configure
from model_sync_tests.snapshots import snapshot_bytes, snapshot_models, snapshot_path

SNAPSHOT = "models-2025-11-18.json"
SNAPSHOT_SIZE = 144
# The old module's result counts, and what this API adds to them.
RESULT_KEYS = {
    "total",
    "created",
    "updated",
    "unchanged",
    "deactivated",
    "reactivated",
    "failed",
    "stale",
    "runId",
    "sources",
}
COUNT_KEYS = RESULT_KEYS - {"runId", "sources"}
SECURITY_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    """One set of key pairs per module: RSA generation is the slow part of these tests."""
    return make_keys(tmp_path_factory.mktemp("jwt_keys"))


# What each kind of server is configured with (the MODEL_SYNC_JWT_* settings).
SERVERS: dict[str, Callable[[Keys], dict[str, Any]]] = {
    "secret": lambda k: {"jwt_secret": SECRET},
    "rsa_pem": lambda k: {"jwt_public_key_file": k.rsa_pem},
    "ec_pem": lambda k: {"jwt_public_key_file": k.ec_pem},
    "jwks": lambda k: {"jwt_jwks_file": k.jwks},
    "secret_iss_aud": lambda k: {
        "jwt_secret": SECRET,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
    },
}


def make_app(settings: Settings, backend: SyncBackend | None, keys: Keys, server: str):
    """The app exactly as ``main`` builds it: the verifier comes from the settings."""
    configured = configure(settings, **SERVERS[server](keys))
    verifier = TokenVerifier.from_settings(configured.api)
    assert verifier is not None
    return create_app(configured, verifier, backend or SyncBackend(None, None))


# --- shared set-up -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    return free_port()


@pytest.fixture
def offline_settings(tmp_path, closed_port) -> Settings:
    """Neither the database nor the gateway answers: a token wrongly accepted shows as 5xx.

    Both fail fast (refused connections), so the refusal tests need no database of their own.
    """
    return configure(
        Settings(
            database_url=f"postgresql://postgres@127.0.0.1:{closed_port}/nothing",
            data_dir=tmp_path / "data",
        ),
        f"http://127.0.0.1:{closed_port}/v1/models",
        http_timeout_seconds=2.0,
        http_max_retries=0,
        http_backoff_seconds=0.0,
    )


@pytest.fixture
def snapshot_settings(settings: Settings) -> Settings:
    """The test database, fed from a real recorded gateway response on disk."""
    return configure(settings, str(snapshot_path(SNAPSHOT)))


@pytest.fixture
def dagster_instance(tmp_path) -> Iterator[DagsterInstance]:
    """An instance whose run coordinator launches each submitted run at once (no daemon):
    runs execute for real, in their own process, like the daemon would start them."""
    home = tmp_path / "instance"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n"
        "  module: dagster._core.run_coordinator\n"
        "  class: DefaultRunCoordinator\n"
        "telemetry:\n  enabled: false\n"
    )
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance


@pytest.fixture
def backend(monkeypatch, dagster_instance) -> Callable[..., SyncBackend]:
    """A real run submitter. The code location runs in its own process and reads its settings
    from the environment, exactly as a deployment does — so they are exported first."""
    submitters: list[RunSubmitter] = []

    def build(settings: Settings) -> SyncBackend:
        monkeypatch.setenv("MODEL_SYNC_DATABASE_URL", settings.database_url or "")
        monkeypatch.setenv("MODEL_SYNC_GATEWAY_URL", settings.source("vercel").url)
        monkeypatch.setenv("MODEL_SYNC_ENABLED", "false")
        monkeypatch.setenv("MODEL_SYNC_HTTP_MAX_RETRIES", str(settings.http.max_retries))
        monkeypatch.setenv("MODEL_SYNC_HTTP_BACKOFF_SECONDS", str(settings.http.backoff_seconds))
        submitter = RunSubmitter(dagster_instance)
        submitters.append(submitter)
        return SyncBackend(dagster_instance, submitter)

    yield build
    # Runs still executing would outlive the test's database (and log its loss): wait for them.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(
        not run.is_finished for run in dagster_instance.get_runs()
    ):
        time.sleep(0.5)
    for submitter in submitters:
        submitter.close()


@pytest.fixture
def client(snapshot_settings, backend, keys) -> Iterator[TestClient]:
    """An HS256-protected app on the test database; the context runs the app's lifespan."""
    app = make_app(snapshot_settings, backend(snapshot_settings), keys, "secret")
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def reader(snapshot_settings, keys) -> Iterator[TestClient]:
    """The app for the read endpoints only: no run submitter behind it."""
    with TestClient(make_app(snapshot_settings, None, keys, "secret")) as test_client:
        yield test_client


def table_counts(db: psycopg.Connection) -> tuple[int, int]:
    """(active, inactive) rows of ai_models, counted without the code under test."""
    return db.execute(
        "SELECT count(*) FILTER (WHERE is_active), count(*) FILTER (WHERE NOT is_active) "
        "FROM ai_models"
    ).fetchone()


def last_success(db: psycopg.Connection) -> datetime | None:
    return db.execute(
        "SELECT max(finished_at) FROM model_sync_runs WHERE status = 'success'"
    ).fetchone()[0]


def assert_sync_succeeded(response: httpx.Response) -> dict[str, Any]:
    """The old module's body, plus the run id and the per-source counts; every count an int."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"success", "result"}
    assert body["success"] is True
    result = body["result"]
    assert result.keys() == RESULT_KEYS
    assert all(type(result[key]) is int for key in COUNT_KEYS), result
    assert isinstance(result["runId"], str) and result["runId"]
    assert {key: result[key] for key in COUNT_KEYS} == result["sources"]["vercel"]
    return result


def assert_sync_failed(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() == {"success", "error", "runId"}
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"]
    return body


# --- 401: every way a request can fail authentication ---------------------------------------


def _authorization(value: str) -> Callable[[Keys], dict[str, str]]:
    return lambda k: {"Authorization": value}


REFUSED: list[tuple[str, str, Callable[[Keys], dict[str, str]]]] = [
    ("missing_header", "secret", lambda k: {}),
    ("basic_scheme", "secret", _authorization("Basic " + b64url(b"admin:admin"))),
    (
        "token_scheme_with_valid_jwt",
        "secret",
        lambda k: {"Authorization": "Token " + sign(SECRET, "HS256")},
    ),
    ("bearer_without_token", "secret", _authorization("Bearer ")),
    ("garbage", "secret", _authorization("Bearer not-a-jwt-at-all")),
    (
        "two_segments",
        "secret",
        lambda k: bearer(sign(SECRET, "HS256").rsplit(".", 1)[0]),
    ),
    ("bad_base64", "secret", _authorization("Bearer !!!.@@@.###")),
    (
        "header_not_json",
        "secret",
        lambda k: bearer(f"{b64url(b'not json')}.{b64url(b'{}')}.{b64url(b'sig')}"),
    ),
    (
        "expired_beyond_leeway",
        "secret",
        lambda k: hs256_headers(iat=int(time.time()) - 600, exp=int(time.time()) - 60),
    ),
    # exp is whole seconds and the clock runs on, so "now" is always >= exp + 10 s here: the
    # token is exactly at (or past) the 10 s clock-skew leeway, which refuses it.
    (
        "expired_exactly_at_the_leeway",
        "secret",
        lambda k: hs256_headers(iat=int(time.time()) - 600, exp=int(time.time()) - 10),
    ),
    ("nbf_in_the_future", "secret", lambda k: hs256_headers(nbf=int(time.time()) + 3600)),
    ("missing_exp", "secret", lambda k: hs256_headers(exp=DROP)),
    ("wrong_secret", "secret", lambda k: bearer(sign(SECRET + "-other", "HS256"))),
    ("wrong_rsa_key", "rsa_pem", lambda k: bearer(sign(k.other_rsa, "RS256"))),
    ("wrong_ec_key", "ec_pem", lambda k: bearer(sign(k.other_ec, "ES256"))),
    (
        "alg_none",
        "secret",
        lambda k: bearer(forge({"alg": "none", "typ": "JWT"}, claims(), None)),
    ),
    (
        "alg_none_capitalised",
        "rsa_pem",
        lambda k: bearer(forge({"alg": "None", "typ": "JWT"}, claims(), None)),
    ),
    (
        "hs256_signed_with_rsa_public_key_pem",
        "rsa_pem",
        lambda k: bearer(forge({"alg": "HS256", "typ": "JWT"}, claims(), k.rsa_pem.read_bytes())),
    ),
    ("rs256_when_only_hs256_configured", "secret", lambda k: bearer(sign(k.rsa, "RS256"))),
    ("es256_when_only_rsa_configured", "rsa_pem", lambda k: bearer(sign(k.ec, "ES256"))),
    (
        "wrong_issuer",
        "secret_iss_aud",
        lambda k: hs256_headers(iss="https://evil.example.test/", aud=AUDIENCE),
    ),
    (
        "wrong_audience",
        "secret_iss_aud",
        lambda k: hs256_headers(iss=ISSUER, aud="another-api"),
    ),
    ("missing_issuer", "secret_iss_aud", lambda k: hs256_headers(aud=AUDIENCE)),
    ("missing_audience", "secret_iss_aud", lambda k: hs256_headers(iss=ISSUER)),
    (
        "unknown_kid",
        "jwks",
        lambda k: bearer(sign(k.rsa, "RS256", kid="rsa-unknown")),
    ),
]
# Anything that would tell an attacker why a token failed, or what the server holds.
LEAKS = ("expired", "signature", "kid", "alg", "issuer", "audience", "begin", "key", "decode")


@pytest.mark.parametrize(
    ("server", "make_headers"),
    [pytest.param(server, make, id=name) for name, server, make in REFUSED],
)
def test_refused_token_answers_a_bare_401_on_both_endpoints(
    offline_settings, module_instance, keys, server, make_headers, caplog
):
    """Every refusal looks the same from outside: no reason, no key material, no exception text.

    The app's database and gateway both refuse connections, so a token accepted by mistake
    would surface as a 5xx (or a 200), never as this 401.
    """
    headers = make_headers(keys)
    runs_before = module_instance.get_runs_count()
    # No submitter at all: a token accepted by mistake would reach it and answer 500.
    backend = SyncBackend(module_instance, None)
    with (
        caplog.at_level(logging.INFO, logger="model_sync.api"),
        TestClient(make_app(offline_settings, backend, keys, server)) as test_client,
    ):
        for method, path in (("POST", SYNC), ("GET", STATS)):
            response = test_client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json() == UNAUTHORIZED
            challenge = response.headers.get("www-authenticate", "")
            assert challenge.split(" ", 1)[0] == "Bearer", challenge
            exposed = (response.text + challenge).lower()
            assert not [word for word in LEAKS if word in exposed], exposed
            assert SECRET.lower() not in exposed
    assert module_instance.get_runs_count() == runs_before, "a refused caller started a run"
    # Each refusal is counted in the log, never with the token itself.
    counted = [record.getMessage() for record in caplog.records if "401 #" in record.getMessage()]
    assert len(counted) == 2
    token = headers.get("Authorization", "").removeprefix("Bearer ").strip()
    assert len(token) < 12 or not any(token in line for line in counted)


@pytest.fixture(scope="module")
def module_instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


# --- accepted tokens -----------------------------------------------------------------------


ACCEPTED: list[tuple[str, str, Callable[[Keys], str]]] = [
    ("hs256_secret", "secret", lambda k: sign(SECRET, "HS256")),
    ("rs256_pem", "rsa_pem", lambda k: sign(k.rsa, "RS256")),
    ("es256_pem", "ec_pem", lambda k: sign(k.ec, "ES256")),
    ("rs256_jwks_kid", "jwks", lambda k: sign(k.rsa, "RS256", kid=JWKS_KID)),
    (
        "hs256_iss_aud_match",
        "secret_iss_aud",
        lambda k: sign(SECRET, "HS256", claims(iss=ISSUER, aud=AUDIENCE)),
    ),
    (
        "expired_within_leeway",
        "secret",
        lambda k: sign(SECRET, "HS256", claims(exp=int(time.time()) - 2)),
    ),
    (
        # Refused only if the check ran over a second after signing.
        "expired_8s_ago_within_the_10s_leeway",
        "secret",
        lambda k: sign(SECRET, "HS256", claims(exp=int(time.time()) - 8)),
    ),
    (
        # nbf at most now + 10 s is accepted: "now" only grows after signing.
        "nbf_exactly_at_the_leeway",
        "secret",
        lambda k: sign(SECRET, "HS256", claims(nbf=int(time.time()) + 10)),
    ),
]


@pytest.mark.parametrize(
    ("server", "make_token"),
    [pytest.param(server, make, id=name) for name, server, make in ACCEPTED],
)
def test_valid_token_reads_the_stats(settings, keys, server, make_token):
    """Each supported way of configuring keys lets its own tokens through (to an empty catalog)."""
    with TestClient(make_app(settings, None, keys, server)) as test_client:
        response = test_client.get(STATS, headers=bearer(make_token(keys)))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "totalModels": 0,
        "activeModels": 0,
        "inactiveModels": 0,
        "lastSyncDate": None,
    }


# --- POST sync-models (in process; the deployed API is in test_api_deployment.py) ----------


def test_sync_models_reports_the_table_state_and_records_an_api_run(client, dagster_instance, db):
    """The counts a caller gets are the ones in Postgres, and the run shows in Dagster's list."""
    expected_ids = {model["id"] for model in snapshot_models(SNAPSHOT)}
    assert len(expected_ids) == SNAPSHOT_SIZE

    first = assert_sync_succeeded(client.post(SYNC, headers=hs256_headers()))
    assert {key: first[key] for key in COUNT_KEYS} == {
        "total": SNAPSHOT_SIZE,
        "created": SNAPSHOT_SIZE,
        "updated": 0,
        "unchanged": 0,
        "deactivated": 0,
        "reactivated": 0,
        "failed": 0,
        "stale": 0,
    }
    assert table_counts(db) == (SNAPSHOT_SIZE, 0)
    stored = {row[0] for row in db.execute("SELECT model_id FROM ai_models")}
    assert stored == expected_ids

    # The same response again: verified unchanged, reported as a full diff would.
    second = assert_sync_succeeded(client.post(SYNC, headers=hs256_headers()))
    assert second["runId"] != first["runId"]
    assert (second["created"], second["updated"], second["deactivated"]) == (0, 0, 0)
    assert (second["total"], second["unchanged"], second["reactivated"]) == (
        SNAPSHOT_SIZE,
        SNAPSHOT_SIZE,
        0,
    )
    assert table_counts(db) == (SNAPSHOT_SIZE, 0)

    columns = "total, created, updated, unchanged, deactivated, reactivated, failed"
    for result in (first, second):
        recorded = db.execute(
            f"SELECT {columns} FROM model_sync_runs WHERE run_id = %s AND status = 'success'",
            (result["runId"],),
        ).fetchall()
        assert recorded == [tuple(result[key] for key in columns.split(", "))]
        run = dagster_instance.get_run_by_id(result["runId"])
        assert run is not None
        assert run.job_name == "ai_models_sync_job"
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags[TRIGGER_TAG] == "api"
        assert run.tags[REQUESTER_TAG] == SUBJECT
    # Every request is recorded: who, the answer, the run.
    assert db.execute(
        "SELECT subject, status_code, outcome, run_id FROM api_sync_requests ORDER BY id"
    ).fetchall() == [
        (SUBJECT, 200, "success", first["runId"]),
        (SUBJECT, 200, "success", second["runId"]),
    ]
    # A finished run can be read back by its id; an unknown id is not found.
    again = client.get(f"{RUNS}/{first['runId']}", headers=hs256_headers())
    assert assert_sync_succeeded(again) == first
    assert client.get(f"{RUNS}/no-such-run", headers=hs256_headers()).json() == {
        "error": "not found"
    }


def test_sync_models_answers_409_while_a_sync_run_is_in_progress(
    snapshot_settings, backend, keys, dagster_instance, db
):
    """A run of the job still STARTED in the instance (say, the schedule's) blocks the API.

    The run is created directly in run storage, so the test needs no second process and no
    timing; once it is over, the API syncs again.
    """
    from model_sync.definitions import build_definitions

    job = build_definitions(snapshot_settings).resolve_job_def("ai_models_sync_job")
    running = dagster_instance.create_run_for_job(job, status=DagsterRunStatus.STARTED)
    app = make_app(snapshot_settings, backend(snapshot_settings), keys, "secret")
    with TestClient(app) as client:
        response = client.post(SYNC, headers=hs256_headers())
        assert response.status_code == 409, response.text
        assert response.json() == {
            "success": False,
            "error": "a sync is already running",
            "runId": running.run_id,
        }
        assert [run.run_id for run in dagster_instance.get_runs()] == [running.run_id]
        assert table_counts(db) == (0, 0)
        assert db.execute("SELECT count(*) FROM model_sync_runs").fetchone() == (0,)

        dagster_instance.report_run_failed(running)
        assert_sync_succeeded(client.post(SYNC, headers=hs256_headers()))
    assert table_counts(db) == (SNAPSHOT_SIZE, 0)


def test_deactivation_guard_refusal_answers_422_and_keeps_the_catalog(
    settings, backend, keys, db, httpserver, dagster_instance
):
    """A gateway suddenly serving 3 of 144 models is refused (422); stats keep the old sync."""
    httpserver.expect_ordered_request("/v1/models").respond_with_data(
        snapshot_bytes(SNAPSHOT), content_type="application/json"
    )
    tiny = {"object": "list", "data": snapshot_models(SNAPSHOT)[:3]}
    httpserver.expect_ordered_request("/v1/models").respond_with_json(tiny)
    served = configure(settings, httpserver.url_for("/v1/models"))
    with TestClient(make_app(served, backend(served), keys, "secret")) as test_client:
        assert_sync_succeeded(test_client.post(SYNC, headers=hs256_headers()))
        synced_at = last_success(db)
        body = assert_sync_failed(test_client.post(SYNC, headers=hs256_headers()), 422)
        stats = test_client.get(STATS, headers=hs256_headers()).json()
    assert "refusing to deactivate 141 of 144" in body["error"]
    assert dagster_instance.get_run_by_id(body["runId"]).status == DagsterRunStatus.FAILURE
    assert table_counts(db) == (SNAPSHOT_SIZE, 0)
    assert db.execute(
        "SELECT status FROM model_sync_runs WHERE run_id = %s", (body["runId"],)
    ).fetchall() == [("failed",)]
    assert stats["activeModels"] == SNAPSHOT_SIZE
    assert parse_z(stats["lastSyncDate"]) == synced_at


def test_unreachable_database_answers_503_without_exposing_it(offline_settings, keys):
    """Postgres down: 503 for both endpoints, at once (no run is started), and nothing of the
    database's host, port or name in the body."""
    unreachable = configure(offline_settings, str(snapshot_path(SNAPSHOT)))
    with TestClient(make_app(unreachable, None, keys, "secret")) as test_client:
        stats = test_client.get(STATS, headers=hs256_headers())
        body = assert_sync_failed(test_client.post(SYNC, headers=hs256_headers()), 503)
    assert stats.status_code == 503
    assert stats.json() == {"error": "database unavailable"}
    assert body == {"success": False, "error": "database unavailable", "runId": None}
    port = unreachable.database_url.rsplit(":", 1)[1].split("/")[0]
    assert port not in stats.text + str(body) and "nothing" not in stats.text + str(body)


# --- GET sync-stats ------------------------------------------------------------------------


def parse_z(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value[:-1] + "+00:00")


def test_sync_stats_counts_the_table_and_dates_the_last_successful_sync(client, db):
    """Counts come from ai_models as it is now (including rows deactivated since the sync)."""
    assert client.get(STATS, headers=hs256_headers()).json() == {
        "totalModels": 0,
        "activeModels": 0,
        "inactiveModels": 0,
        "lastSyncDate": None,
    }
    assert_sync_succeeded(client.post(SYNC, headers=hs256_headers()))
    db.execute(
        "UPDATE ai_models SET is_active = false, deactivated_at = now() "
        "WHERE model_id IN (SELECT model_id FROM ai_models ORDER BY model_id LIMIT 5)"
    )
    response = client.get(STATS, headers=hs256_headers())
    assert response.status_code == 200
    stats = response.json()
    assert stats.keys() == {"totalModels", "activeModels", "inactiveModels", "lastSyncDate"}
    assert (stats["totalModels"], stats["activeModels"], stats["inactiveModels"]) == (
        SNAPSHOT_SIZE,
        SNAPSHOT_SIZE - 5,
        5,
    )
    assert table_counts(db) == (SNAPSHOT_SIZE - 5, 5)
    assert parse_z(stats["lastSyncDate"]) == last_success(db)


def test_sync_stats_date_is_utc_whatever_the_database_time_zone(reader, db):
    """lastSyncDate promises ISO-8601 UTC; a server whose TimeZone is local must not change it.

    Many self-hosted servers inherit the OS time zone at initdb. The run row is written
    directly, as a sync would, to keep the test about the endpoint alone.
    """
    name = db.info.dbname
    db.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Kolkata'")
    db.execute(
        "INSERT INTO model_sync_runs (run_id, source, status, started_at, finished_at) "
        "VALUES ('manual', 'vercel', 'success', "
        "'2025-11-18 19:40:00+00', '2025-11-18 19:40:26.5+00')"
    )
    stats = reader.get(STATS, headers=hs256_headers()).json()
    assert stats["lastSyncDate"] == "2025-11-18T19:40:26.500000Z"


def test_sync_stats_requires_a_token_and_healthz_does_not(reader):
    """Load balancers probe /healthz without credentials (GET or HEAD); the stats stay private."""
    refused = reader.get(STATS)
    assert refused.status_code == 401
    assert refused.json() == UNAUTHORIZED
    health = reader.get(HEALTH)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert reader.head(HEALTH).status_code == 200


def test_every_answer_is_json_errors_included_and_never_cached(reader):
    """Errors speak the API's {"error": …}; nothing is cached or sniffed; no redirect is built
    from the client's Host header (a trailing slash is simply not found)."""
    answers = {
        "not found": reader.get("/nope"),
        "method not allowed": reader.delete(HEALTH),
        "trailing slash": reader.get(STATS + "/", headers={"Host": "evil.example"}),
        "unauthorized": reader.get(STATS),
        "ok": reader.get(HEALTH),
    }
    assert answers["not found"].status_code == 404
    assert answers["not found"].json() == {"error": "not found"}
    assert answers["method not allowed"].status_code == 405
    assert answers["method not allowed"].json() == {"error": "method not allowed"}
    assert answers["trailing slash"].status_code == 404
    assert "location" not in answers["trailing slash"].headers
    for response in answers.values():
        assert {k: response.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS


def test_request_heads_over_16_kib_are_refused_before_the_token_is_read(reader, caplog):
    with caplog.at_level(logging.INFO, logger="model_sync.api"):
        big = reader.get(STATS, headers=bearer("x" * (16 * 1024)))
        under = reader.get(STATS, headers=bearer("y" * (15 * 1024)))
    assert big.status_code == 431
    assert big.json() == {"error": "request header fields too large"}
    assert under.status_code == 401
    assert [r.getMessage() for r in caplog.records if "401 #" in r.getMessage()] != []
    assert not any("x" * 50 in r.getMessage() for r in caplog.records)


# README "HTTP API": a costs body is at most 1 MiB.
COSTS = "/api/v1/costs"
COSTS_BODY_LIMIT = 1024 * 1024
JSON_BODY = {"Content-Type": "application/json"}


def costs_body(size: int) -> bytes:
    """A valid one-record batch padded with JSON whitespace to exactly ``size`` bytes."""
    body = json.dumps(
        {"records": [{"source": "vercel", "model_id": "acme/none", "usage": {"input_tokens": 1}}]}
    ).encode()
    return body + b" " * (size - len(body))


def test_a_costs_body_is_not_read_before_the_token_is_checked(reader):
    """An unauthenticated caller learns nothing from the body and cannot make the API parse
    it: malformed, oversized or valid, the answer is the same bare 401."""
    for body in (b"{not json", b"x" * (COSTS_BODY_LIMIT + 1), costs_body(COSTS_BODY_LIMIT)):
        response = reader.post(COSTS, content=body, headers=JSON_BODY)
        assert response.status_code == 401, response.text
        assert response.json() == UNAUTHORIZED


def test_costs_bodies_up_to_one_mebibyte_are_read_and_larger_ones_refused(reader):
    headers = {**JSON_BODY, **hs256_headers()}
    at_limit = reader.post(COSTS, content=costs_body(COSTS_BODY_LIMIT), headers=headers)
    assert at_limit.status_code == 200, at_limit.text
    [result] = at_limit.json()["results"]
    assert result["model_id"] == "acme/none" and "holds no version" in result["error"]
    over = reader.post(COSTS, content=costs_body(COSTS_BODY_LIMIT + 1), headers=headers)
    assert over.status_code == 413
    assert over.json() == {"error": "request body over 1048576 bytes"}
    # Without a Content-Length (chunked), the stream is cut at the limit all the same.
    chunks = iter(
        [
            costs_body(COSTS_BODY_LIMIT + 1)[i : i + 65536]
            for i in range(0, COSTS_BODY_LIMIT + 1, 65536)
        ]
    )
    streamed = reader.post(COSTS, content=chunks, headers=headers)
    assert streamed.status_code == 413
    malformed = reader.post(COSTS, content=b"{not json", headers=headers)
    assert malformed.status_code == 422 and malformed.json() == {"error": "invalid request"}


def test_a_record_with_text_postgres_cannot_hold_gets_its_error_and_the_batch_goes_on(reader):
    """NUL and lone surrogates (valid JSON escapes) in a record once failed the batch's shared
    transaction: 503 for everyone (found by the schemathesis test in CI). Each such record is
    now refused on its own, naming the field, with its ids echoed escaped."""
    body = json.dumps(
        {
            "records": [
                {"source": "vercel", "model_id": "acme/\x00x", "usage": {"input_tokens": 1}},
                {"source": "vercel", "model_id": "acme/none", "usage": {"\ud800": 1}},
                {"source": "vercel", "model_id": "acme/none", "usage": {"input\x00": 1}},
                {"canonical_model_id": "acme/\x00", "usage": {}},
                {"source": "vercel", "model_id": "acme/none", "usage": {"input_tokens": 1}},
            ]
        }
    ).encode()
    response = reader.post(COSTS, content=body, headers={**JSON_BODY, **hs256_headers()})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["index"], r["source"], r["model_id"]) for r in results] == [
        (0, "vercel", "acme/\\x00x"),
        (1, "vercel", "acme/none"),
        (2, "vercel", "acme/none"),
        (3, None, None),
        (4, "vercel", "acme/none"),
    ]
    assert [r["error"] for r in results[:4]] == [
        "model_id contains a NUL character, which no catalog row can hold",
        "usage.<key> contains invalid unicode (a lone surrogate), which no catalog row can hold",
        "usage.<key> contains a NUL character, which no catalog row can hold",
        "canonical_model_id contains a NUL character, which no catalog row can hold",
    ]
    # The batch went on: the last record was looked up (this catalog holds no such model).
    assert "holds no version" in results[4]["error"]
    # A lone surrogate in a typed field is not a string to pydantic: the body is refused
    # whole, as malformed JSON is (422, never a 5xx).
    surrogate = json.dumps({"records": [{"source": "\ud800", "model_id": "a", "usage": {}}]})
    refused = reader.post(COSTS, content=surrogate, headers={**JSON_BODY, **hs256_headers()})
    assert refused.status_code == 422 and refused.json() == {"error": "invalid request"}


# --- OpenAPI -------------------------------------------------------------------------------


def test_openapi_lists_the_paths_behind_a_bearer_scheme(reader):
    """Generated clients and API gateways read the schema: paths and auth must be in it."""
    schema = reader.get("/openapi.json").json()
    runs = f"{RUNS}/{{run_id}}"
    assert set(schema["paths"]) == {SYNC, STATS, HEALTH, runs, "/api/v1/costs"}
    schemes = schema["components"]["securitySchemes"]
    bearer_schemes = [
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer"
    ]
    assert len(bearer_schemes) == 1, schemes
    [scheme_name] = bearer_schemes
    assert schema["paths"][SYNC]["post"]["security"] == [{scheme_name: []}]
    assert schema["paths"][STATS]["get"]["security"] == [{scheme_name: []}]
    assert schema["paths"][runs]["get"]["security"] == [{scheme_name: []}]
    assert schema["paths"]["/api/v1/costs"]["post"]["security"] == [{scheme_name: []}]
    assert "security" not in schema["paths"][HEALTH]["get"]
    assert {"202", "401", "409", "422", "502", "503"} <= set(
        schema["paths"][SYNC]["post"]["responses"]
    )


@pytest.mark.parametrize("authorized", [False, True], ids=["no_token", "valid_token"])
def test_no_generated_request_gets_a_5xx(snapshot_settings, backend, keys, authorized):
    """Whatever schemathesis sends, with or without a valid token, the API never answers 5xx.

    Valid and invalid inputs for every operation; with a valid token the POST submits real
    runs (answered 202 at once: the wait is 0 here) or finds one running (409). (The loader is
    used directly, not ``schemathesis.pytest.from_fixture``: its lazy loader reads
    ``Function._nodeid``, which pytest 9 no longer has.)
    """
    quick = configure(snapshot_settings, sync_wait_seconds=0)
    app = make_app(quick, backend(quick) if authorized else None, keys, "secret")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen: set[tuple[str, int]] = set()

    def check(case) -> None:
        headers = hs256_headers() if authorized else None
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.operation.label, response.text)
        if not authorized and case.operation.path != HEALTH:
            assert response.status_code in (401, 405), (case.operation.label, response.text)
        positive = case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
        if authorized and positive and case.operation.path == SYNC:
            # Negative cases may drop the Authorization header on purpose; positive ones keep it.
            assert response.status_code in (200, 202, 409), response.text
        seen.add((case.operation.label, response.status_code))

    # Every operation gets its own examples, valid and invalid: none is left to chance.
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.label for operation in operations} == {
        f"POST {SYNC}",
        f"GET {STATS}",
        f"GET {HEALTH}",
        f"GET {RUNS}/{{run_id}}",
        f"POST {COSTS}",
    }
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
        hypothesis.settings(
            max_examples=12,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )(hypothesis.given(case=cases)(check))()

    if authorized:
        assert {(f"GET {STATS}", 200)} <= seen, seen
        assert seen & {(f"POST {SYNC}", 202), (f"POST {SYNC}", 409), (f"POST {SYNC}", 200)}
        assert (f"POST {COSTS}", 200) in seen, seen


# --- start-up ------------------------------------------------------------------------------


def _without_model_sync_env(monkeypatch) -> None:
    """No MODEL_SYNC_* at all (so no JWT key either), whatever the developer's shell exports."""
    for name in list(os.environ):
        if name.startswith("MODEL_SYNC_"):
            monkeypatch.delenv(name)


def test_main_refuses_to_start_without_auth(monkeypatch, capsys):
    """Forgetting the key must not silently publish an unauthenticated sync trigger."""
    _without_model_sync_env(monkeypatch)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "refusing to start without authentication" in err
    assert "MODEL_SYNC_JWT_SECRET" in err


def test_main_refuses_to_start_without_a_dagster_home(monkeypatch, capsys):
    """API syncs are runs of the deployment's instance: without DAGSTER_HOME there is none."""
    _without_model_sync_env(monkeypatch)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("MODEL_SYNC_JWT_SECRET", SECRET)
    assert main([]) == 2
    assert "DAGSTER_HOME is not set" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "content", "expected"),
    [
        pytest.param("MODEL_SYNC_JWT_PUBLIC_KEY_FILE", "not a key\n", "PEM", id="pem_not_a_key"),
        pytest.param("MODEL_SYNC_JWT_JWKS_FILE", "{not json", "JWKS", id="jwks_not_json"),
        pytest.param("MODEL_SYNC_JWT_JWKS_FILE", '{"keys": []}', "JWKS", id="jwks_without_keys"),
        pytest.param("MODEL_SYNC_JWT_SECRET", "x" * 31, "31 bytes", id="secret_one_byte_short"),
    ],
)
def test_main_reports_unusable_key_material_as_configuration_errors(
    monkeypatch, capsys, tmp_path, variable, content, expected
):
    """A broken key is an operator's mistake: one line naming the variable, exit 2."""
    _without_model_sync_env(monkeypatch)
    path = tmp_path / "key-file"
    path.write_text(content)
    monkeypatch.setenv(variable, content if variable == "MODEL_SYNC_JWT_SECRET" else str(path))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("configuration error: ") and variable in err and expected in err


def test_a_32_byte_secret_is_enough(monkeypatch):
    """The secret rule at its threshold: 32 bytes are accepted, 31 refused (above)."""
    from model_sync.settings import ApiSettings

    assert TokenVerifier.from_settings(ApiSettings(jwt_secret="x" * 32)).secret == "x" * 32


def test_app_without_verifier_serves_without_a_token(settings):
    """``--insecure-no-auth`` builds the app with no verifier: no header needed at all."""
    with TestClient(create_app(settings, None, SyncBackend(None, None))) as test_client:
        response = test_client.get(STATS)
    assert response.status_code == 200
    assert response.json()["totalModels"] == 0


def test_insecure_no_auth_logs_a_loud_warning_before_serving(tmp_path):
    """Running open must be impossible to miss in the logs, and must come before serving."""
    from model_sync_tests.apitools import clean_env, start_api, wait_healthy

    home = tmp_path / "home"
    home.mkdir()
    api, url = start_api(
        clean_env(DAGSTER_HOME=str(home)), tmp_path / "api.log", "--insecure-no-auth"
    )
    try:
        wait_healthy(api, url)
    finally:
        api.stop()
    output = api.output()
    assert "AUTHENTICATION IS DISABLED" in output
    assert output.index("AUTHENTICATION IS DISABLED") < output.index("Uvicorn running on")
