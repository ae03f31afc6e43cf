"""The HTTP API from the caller's side: JWT auth, the two scheduler endpoints, start-up.

Callers of the old module only ever see status codes and JSON bodies, so that is what is
asserted here, against a real Postgres, a real Dagster instance and a real recorded gateway
response. Tokens are minted with PyJWT from key pairs generated per module; the ones PyJWT
refuses to produce (``alg: none``, an RSA public key used as an HMAC secret) are assembled by
hand, the way an attacker would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import jwt
import psycopg
import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dagster import DagsterInstance, DagsterRunStatus
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis import GenerationMode
from werkzeug import Request, Response

from model_sync.api import create_app, main
from model_sync.auth import TokenVerifier
from model_sync.definitions import build_definitions
from model_sync.schedules import SYNC_JOB_NAME
from model_sync.settings import Settings
from model_sync_tests.snapshots import snapshot_bytes, snapshot_models, snapshot_path

SNAPSHOT = "models-2025-11-18.json"
SNAPSHOT_SIZE = 144
SYNC = "/api/v1/scheduler/sync-models"
STATS = "/api/v1/scheduler/sync-stats"
HEALTH = "/healthz"
SECRET = "api-test-shared-secret-of-enough-length"
ISSUER = "https://auth.example.test/"
AUDIENCE = "model-sync-api"
JWKS_KID = "rsa-2025"
TRIGGER_TAG = "model_sync/triggered_by"
REQUESTER_TAG = "model_sync/requested_by"
SUBJECT = "svc-scheduler"
# The old module's result counts, and the run id this API adds to them.
RESULT_KEYS = {
    "total",
    "created",
    "updated",
    "unchanged",
    "deactivated",
    "reactivated",
    "failed",
    "runId",
}
UNAUTHORIZED = {"error": "unauthorized"}
DROP = object()


# --- keys and tokens -----------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    rsa: rsa.RSAPrivateKey
    other_rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    other_ec: ec.EllipticCurvePrivateKey
    rsa_pem: Path
    ec_pem: Path
    jwks: Path


def _public_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    """One set of key pairs per module: RSA generation is the slow part of these tests."""
    folder = tmp_path_factory.mktemp("jwt_keys")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other_ec = ec.generate_private_key(ec.SECP256R1())
    rsa_pem = folder / "rsa_public.pem"
    rsa_pem.write_bytes(_public_pem(rsa_key))
    ec_pem = folder / "ec_public.pem"
    ec_pem.write_bytes(_public_pem(ec_key))
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": JWKS_KID, "alg": "RS256", "use": "sig"}]}))
    return Keys(rsa_key, other_rsa, ec_key, other_ec, rsa_pem, ec_pem, jwks)


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid claim set; pass ``name=DROP`` to leave a claim out."""
    now = int(time.time())
    payload = {"sub": SUBJECT, "iat": now, "exp": now + 300, **overrides}
    return {name: value for name, value in payload.items() if value is not DROP}


def sign(key, algorithm: str, payload: dict | None = None, **headers: Any) -> str:
    return jwt.encode(claims() if payload is None else payload, key, algorithm, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, payload: dict, hmac_key: bytes | None) -> str:
    """A JWT assembled by hand, for the tokens PyJWT rightly refuses to produce."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = (
        b""
        if hmac_key is None
        else hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{b64url(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hs256_headers(**overrides: Any) -> dict[str, str]:
    return bearer(sign(SECRET, "HS256", claims(**overrides)))


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


def make_app(settings: Settings, instance: DagsterInstance | None, keys: Keys, server: str):
    """The app exactly as ``main`` builds it: the verifier comes from the settings."""
    configured = replace(settings, **SERVERS[server](keys))
    verifier = TokenVerifier.from_settings(configured)
    assert verifier is not None
    return create_app(configured, verifier, instance)


# --- shared set-up -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    return free_port()


@pytest.fixture(scope="module")
def module_instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


@pytest.fixture
def offline_settings(tmp_path, closed_port) -> Settings:
    """Neither the database nor the gateway answers: a token wrongly accepted shows as 5xx.

    Both fail fast (refused connections), so the refusal tests need no database of their own.
    """
    return Settings(
        database_url=f"postgresql://postgres@127.0.0.1:{closed_port}/nothing",
        gateway_url=f"http://127.0.0.1:{closed_port}/v1/models",
        data_dir=tmp_path / "data",
        http_timeout_seconds=2.0,
        http_max_retries=0,
        http_backoff_seconds=0.0,
    )


@pytest.fixture
def snapshot_settings(settings: Settings) -> Settings:
    """The test database, fed from a real recorded gateway response on disk."""
    return replace(settings, gateway_url=str(snapshot_path(SNAPSHOT)))


@pytest.fixture
def client(snapshot_settings, instance, keys) -> Iterator[TestClient]:
    """An HS256-protected app on the test database; the context runs the app's lifespan."""
    with TestClient(make_app(snapshot_settings, instance, keys, "secret")) as test_client:
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
    """The old module's body, exactly, plus the run id; every count a plain integer."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"success", "result"}
    assert body["success"] is True
    result = body["result"]
    assert result.keys() == RESULT_KEYS
    assert all(type(result[key]) is int for key in RESULT_KEYS - {"runId"}), result
    assert isinstance(result["runId"], str) and result["runId"]
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
    offline_settings, module_instance, keys, server, make_headers
):
    """Every refusal looks the same from outside: no reason, no key material, no exception text.

    The app's database and gateway both refuse connections, so a token accepted by mistake
    would surface as a 5xx (or a 200), never as this 401.
    """
    headers = make_headers(keys)
    runs_before = module_instance.get_runs_count()
    with TestClient(make_app(offline_settings, module_instance, keys, server)) as test_client:
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
def test_valid_token_reads_the_stats(settings, instance, keys, server, make_token):
    """Each supported way of configuring keys lets its own tokens through (to an empty catalog)."""
    with TestClient(make_app(settings, instance, keys, server)) as test_client:
        response = test_client.get(STATS, headers=bearer(make_token(keys)))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "totalModels": 0,
        "activeModels": 0,
        "inactiveModels": 0,
        "lastSyncDate": None,
    }


# --- POST sync-models ----------------------------------------------------------------------


def test_sync_models_reports_the_table_state_and_records_an_api_run(client, instance, db):
    """The counts a caller gets are the ones in Postgres, and the run shows in Dagster's list."""
    expected_ids = {model["id"] for model in snapshot_models(SNAPSHOT)}
    assert len(expected_ids) == SNAPSHOT_SIZE

    first = assert_sync_succeeded(client.post(SYNC, headers=hs256_headers()))
    assert first == {
        "total": SNAPSHOT_SIZE,
        "created": SNAPSHOT_SIZE,
        "updated": 0,
        "unchanged": 0,
        "deactivated": 0,
        "reactivated": 0,
        "failed": 0,
        "runId": first["runId"],
    }
    assert table_counts(db) == (SNAPSHOT_SIZE, 0)
    stored = {row[0] for row in db.execute("SELECT model_id FROM ai_models")}
    assert stored == expected_ids

    second = assert_sync_succeeded(client.post(SYNC, headers=hs256_headers()))
    assert second["runId"] != first["runId"]
    assert (second["created"], second["updated"], second["deactivated"]) == (0, 0, 0)
    assert (second["total"], second["unchanged"], second["reactivated"]) == (SNAPSHOT_SIZE,) * 2 + (
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
        run = instance.get_run_by_id(result["runId"])
        assert run is not None
        assert run.job_name == SYNC_JOB_NAME
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags[TRIGGER_TAG] == "api"
        assert run.tags[REQUESTER_TAG] == SUBJECT


def test_sync_models_answers_409_while_a_sync_run_is_in_progress(
    client, snapshot_settings, instance, db
):
    """A run of the job still STARTED in the instance (say, the schedule's) blocks the API.

    The run is created directly in run storage, so the test needs no second process and no
    timing; once it is over, the API syncs again.
    """
    job = build_definitions(snapshot_settings).resolve_job_def(SYNC_JOB_NAME)
    running = instance.create_run_for_job(job, status=DagsterRunStatus.STARTED)

    response = client.post(SYNC, headers=hs256_headers())
    assert response.status_code == 409, response.text
    assert response.json() == {
        "success": False,
        "error": "a sync is already running",
        "runId": running.run_id,
    }
    assert [run.run_id for run in instance.get_runs()] == [running.run_id]
    assert table_counts(db) == (0, 0)
    assert db.execute("SELECT count(*) FROM model_sync_runs").fetchone() == (0,)

    instance.report_run_failed(running)
    assert_sync_succeeded(client.post(SYNC, headers=hs256_headers()))
    assert table_counts(db) == (SNAPSHOT_SIZE, 0)


def test_sync_models_answers_409_while_this_process_runs_a_sync(
    settings, instance, keys, httpserver, db
):
    """Two callers at once: the second is told which run is busy instead of queueing behind it.

    The gateway holds the first sync's fetch until the second request has been answered.
    """
    release = threading.Event()
    body = snapshot_bytes(SNAPSHOT)

    def slow_gateway(request: Request) -> Response:
        release.wait(30)
        return Response(body, content_type="application/json")

    httpserver.expect_request("/v1/models").respond_with_handler(slow_gateway)
    slow = replace(settings, gateway_url=httpserver.url_for("/v1/models"), http_timeout_seconds=30)
    with TestClient(make_app(slow, instance, keys, "secret")) as test_client:
        answers: list[httpx.Response] = []
        first = threading.Thread(
            target=lambda: answers.append(test_client.post(SYNC, headers=hs256_headers()))
        )
        first.start()
        try:
            deadline = time.monotonic() + 30
            # The run is STARTED only inside execute_in_process, i.e. while the lock is held.
            while [run.status for run in instance.get_runs()] != [DagsterRunStatus.STARTED]:
                assert time.monotonic() < deadline, "the first sync never started"
                time.sleep(0.05)
            [started] = instance.get_runs()
            busy = test_client.post(SYNC, headers=hs256_headers())
        finally:
            release.set()
            first.join(60)
    assert busy.status_code == 409, busy.text
    assert busy.json() == {
        "success": False,
        "error": "a sync is already running",
        "runId": started.run_id,
    }
    [done] = answers
    assert assert_sync_succeeded(done)["runId"] == started.run_id
    assert len(instance.get_runs()) == 1
    assert table_counts(db) == (SNAPSHOT_SIZE, 0)


def test_missing_saved_response_answers_502_naming_it(settings, instance, keys, db, tmp_path):
    """A gateway failure is the gateway's fault (502), and the caller learns what failed."""
    missing = tmp_path / "no-such-response.json"
    with TestClient(
        make_app(replace(settings, gateway_url=str(missing)), instance, keys, "secret")
    ) as test_client:
        body = assert_sync_failed(test_client.post(SYNC, headers=hs256_headers()), 502)
    assert "cannot read the saved response" in body["error"]
    assert str(missing) in body["error"]
    run = instance.get_run_by_id(body["runId"])
    assert run is not None and run.status == DagsterRunStatus.FAILURE
    assert run.tags[TRIGGER_TAG] == "api"
    assert table_counts(db) == (0, 0)


def test_deactivation_guard_refusal_answers_422_and_keeps_the_catalog(
    settings, instance, keys, db, httpserver
):
    """A gateway suddenly serving 3 of 144 models is refused (422); stats keep the old sync."""
    httpserver.expect_ordered_request("/v1/models").respond_with_data(
        snapshot_bytes(SNAPSHOT), content_type="application/json"
    )
    tiny = {"object": "list", "data": snapshot_models(SNAPSHOT)[:3]}
    httpserver.expect_ordered_request("/v1/models").respond_with_json(tiny)
    served = replace(settings, gateway_url=httpserver.url_for("/v1/models"))
    with TestClient(make_app(served, instance, keys, "secret")) as test_client:
        assert_sync_succeeded(test_client.post(SYNC, headers=hs256_headers()))
        synced_at = last_success(db)
        body = assert_sync_failed(test_client.post(SYNC, headers=hs256_headers()), 422)
        stats = test_client.get(STATS, headers=hs256_headers()).json()
    assert "refusing to deactivate 141 of 144" in body["error"]
    assert instance.get_run_by_id(body["runId"]).status == DagsterRunStatus.FAILURE
    assert table_counts(db) == (SNAPSHOT_SIZE, 0)
    assert db.execute(
        "SELECT status FROM model_sync_runs WHERE run_id = %s", (body["runId"],)
    ).fetchall() == [("failed",)]
    assert stats["activeModels"] == SNAPSHOT_SIZE
    assert parse_z(stats["lastSyncDate"]) == synced_at


def test_unreachable_database_answers_503(offline_settings, instance, keys):
    """Postgres down: 503 for both endpoints (the sync only after its two retries, ~15 s)."""
    unreachable = replace(offline_settings, gateway_url=str(snapshot_path(SNAPSHOT)))
    with TestClient(make_app(unreachable, instance, keys, "secret")) as test_client:
        stats = test_client.get(STATS, headers=hs256_headers())
        body = assert_sync_failed(test_client.post(SYNC, headers=hs256_headers()), 503)
    assert stats.status_code == 503
    assert stats.json() == {"error": "database unavailable"}
    assert "cannot reach the catalog database" in body["error"]
    assert instance.get_run_by_id(body["runId"]).status == DagsterRunStatus.FAILURE


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


def test_sync_stats_date_is_utc_whatever_the_database_time_zone(client, db):
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
    stats = client.get(STATS, headers=hs256_headers()).json()
    assert stats["lastSyncDate"] == "2025-11-18T19:40:26.500000Z"


def test_sync_stats_requires_a_token_and_healthz_does_not(client):
    """Load balancers probe /healthz without credentials; the stats stay private."""
    refused = client.get(STATS)
    assert refused.status_code == 401
    assert refused.json() == UNAUTHORIZED
    health = client.get(HEALTH)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}


# --- OpenAPI -------------------------------------------------------------------------------


def test_openapi_lists_the_three_paths_behind_a_bearer_scheme(client):
    """Generated clients and API gateways read the schema: paths and auth must be in it."""
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {SYNC, STATS, HEALTH}
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
    assert "security" not in schema["paths"][HEALTH]["get"]
    assert {"401", "409", "422", "502", "503"} <= set(schema["paths"][SYNC]["post"]["responses"])


@pytest.mark.parametrize("authorized", [False, True], ids=["no_token", "valid_token"])
def test_no_generated_request_gets_a_5xx(snapshot_settings, instance, keys, authorized):
    """Whatever schemathesis sends, with or without a valid token, the API never answers 5xx.

    Valid and invalid inputs for all three operations; with a valid token the POST runs real
    syncs of the saved response, which must all succeed. (The loader is used directly, not
    ``schemathesis.pytest.from_fixture``: its lazy loader reads ``Function._nodeid``, which
    pytest 9 no longer has.)
    """
    app = make_app(snapshot_settings, instance, keys, "secret")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )
    seen: set[tuple[str, int]] = set()

    @hypothesis.settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=cases)
    def call(case) -> None:
        headers = hs256_headers() if authorized else None
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.operation.label, response.text)
        if not authorized and case.operation.path != HEALTH:
            assert response.status_code == 401, (case.operation.label, response.text)
        positive = case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
        if authorized and positive and case.operation.path == SYNC:
            # Negative cases may drop the Authorization header on purpose; positive ones keep it.
            assert response.status_code == 200, response.text
        seen.add((case.operation.label, response.status_code))

    call()
    assert {label for label, _ in seen} == {f"POST {SYNC}", f"GET {STATS}", f"GET {HEALTH}"}
    if authorized:
        assert {(f"POST {SYNC}", 200), (f"GET {STATS}", 200)} <= seen, seen


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


@pytest.mark.parametrize(
    ("variable", "content"),
    [
        pytest.param("MODEL_SYNC_JWT_PUBLIC_KEY_FILE", "not a key\n", id="pem_not_a_key"),
        pytest.param("MODEL_SYNC_JWT_JWKS_FILE", "{not json", id="jwks_not_json"),
        pytest.param("MODEL_SYNC_JWT_JWKS_FILE", '{"keys": []}', id="jwks_without_keys"),
    ],
)
def test_main_reports_unusable_key_files_as_configuration_errors(
    monkeypatch, capsys, tmp_path, variable, content
):
    """A broken key file is an operator's mistake: a one-line message and exit 2, no traceback."""
    _without_model_sync_env(monkeypatch)
    path = tmp_path / "key-file"
    path.write_text(content)
    monkeypatch.setenv(variable, str(path))
    assert main([]) == 2
    assert "configuration error" in capsys.readouterr().err


def test_app_without_verifier_serves_without_a_token(settings, instance):
    """``--insecure-no-auth`` builds the app with no verifier: no header needed at all."""
    with TestClient(create_app(settings, None, instance)) as test_client:
        response = test_client.get(STATS)
    assert response.status_code == 200
    assert response.json()["totalModels"] == 0


def _clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_SYNC_", "DAGSTER_"))}
    return {**env, **overrides}


def _start_api(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen, Path]:
    log = cwd / "api.stderr"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "model_sync.api", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return process, log


def _wait_healthy(process: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base_url}{HEALTH}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the API did not come up: {log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def test_insecure_no_auth_logs_a_loud_warning_before_serving(tmp_path):
    """Running open must be impossible to miss in the logs, and must come before serving."""
    port = free_port()
    process, log = _start_api(["--insecure-no-auth", "--port", str(port)], _clean_env(), tmp_path)
    try:
        _wait_healthy(process, f"http://127.0.0.1:{port}", log)
    finally:
        _stop(process)
    err = log.read_text()
    assert "AUTHENTICATION IS DISABLED" in err
    assert err.index("AUTHENTICATION IS DISABLED") < err.index("Uvicorn running on")


def test_console_script_syncs_end_to_end(database_url, db, tmp_path):
    """model-sync-api as deployed: env configuration, a real socket, a real token, DAGSTER_HOME."""
    port = free_port()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = _clean_env(
        MODEL_SYNC_JWT_SECRET=SECRET,
        MODEL_SYNC_DATABASE_URL=database_url,
        MODEL_SYNC_GATEWAY_URL=str(snapshot_path(SNAPSHOT)),
        DAGSTER_HOME=str(dagster_home),
    )
    process, log = _start_api(["--port", str(port)], env, tmp_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, base_url, log)
        assert httpx.post(f"{base_url}{SYNC}", timeout=10).status_code == 401
        response = httpx.post(f"{base_url}{SYNC}", headers=hs256_headers(), timeout=120)
        result = assert_sync_succeeded(response)
    finally:
        _stop(process)
    assert (result["total"], result["created"]) == (SNAPSHOT_SIZE, SNAPSHOT_SIZE)
    assert table_counts(db) == (SNAPSHOT_SIZE, 0)
    with DagsterInstance.from_config(str(dagster_home)) as home:
        run = home.get_run_by_id(result["runId"])
        assert run is not None, log.read_text()
        assert run.tags[TRIGGER_TAG] == "api"
