"""Fresh within a minute: the change sensor against a real HTTP server on loopback (with and
without ETag / Last-Modified: 304, changed body, unchanged body, 5xx, timeout), one run per
body, and a verified-unchanged run that writes nothing."""

from __future__ import annotations

import hashlib
import json
import time

import psycopg
import pytest
from dagster import AssetKey, RunRequest, build_sensor_context
from werkzeug import Response

from model_sync.definitions import build_definitions
from model_sync.resources import CatalogDatabase, ChangeFeed, GatewayClient
from model_sync.schedules import SYNC_JOB_NAME
from model_sync.sensors import change_sensor_name
from model_sync.service import transform_version
from model_sync.sources import get_source
from model_sync_tests.conftest import configure
from model_sync_tests.snapshots import snapshot_bytes

PATH = "/v1/models"
OLD, NEW = "models-2025-11-18.json", "models-2026-03-05.json"
SENSOR = change_sensor_name("vercel")
# Every catalog table a sync may write, and how to read it whole.
TABLES = {
    "ai_models": "SELECT *, xmin::text FROM ai_models ORDER BY id",
    "ai_model_versions": "SELECT * FROM ai_model_versions ORDER BY id",
    "ai_model_changes": "SELECT * FROM ai_model_changes ORDER BY id",
    "webhook_outbox": "SELECT * FROM webhook_outbox ORDER BY id",
    "response_archive": "SELECT sha256, first_fetched_at FROM response_archive ORDER BY 1",
    "response_captures": "SELECT * FROM response_captures ORDER BY id",
}


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def poll(settings, cursor: str | None = None):
    """Evaluate the vercel change sensor once, as the daemon would."""
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def(SENSOR)
    resources = {
        "gateways": GatewayClient.from_settings(settings),
        "catalog": CatalogDatabase.from_settings(settings),
    }
    with build_sensor_context(cursor=cursor, resources=resources) as context:
        data = sensor.evaluate_tick(context)
    return data


def only_request(data) -> RunRequest:
    [request] = data.run_requests
    return request


def skip_message(data) -> str:
    assert not data.run_requests
    return data.skip_message


@pytest.fixture
def polled(settings, httpserver):
    def configured(**overrides):
        return configure(settings, httpserver.url_for(PATH), **overrides)

    return configured


def serve(httpserver, body: bytes, **headers) -> None:
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_response(
        Response(body, content_type="application/json", headers=headers)
    )


def test_without_validators_the_body_hash_decides(polled, httpserver, run_sync):
    settings = polled()
    serve(httpserver, snapshot_bytes(OLD))
    # Never synced: the first poll launches the first sync, keyed by source, body and code.
    request = only_request(poll(settings))
    version = transform_version(get_source("vercel"))
    assert request.run_key == f"vercel:{sha(snapshot_bytes(OLD))}:{version}"
    assert set(request.asset_selection) == {
        AssetKey(["vercel", name])
        for name in ("gateway_models_raw", "ai_models_frame", "ai_models")
    }
    assert request.tags["model_sync/source"] == "vercel"
    # The same body polled again (not yet synced) asks for the same run: Dagster runs a run
    # key once, so one body is synced once.
    assert only_request(poll(settings)).run_key == request.run_key

    assert run_sync(httpserver.url_for(PATH)).success
    message = skip_message(poll(settings))
    assert message.startswith("unchanged: body sha256 ")

    serve(httpserver, snapshot_bytes(NEW))
    changed = only_request(poll(settings))
    assert changed.run_key == f"vercel:{sha(snapshot_bytes(NEW))}:{version}"


def test_an_etag_makes_an_unchanged_poll_a_304(polled, httpserver, run_sync):
    settings = polled()
    body = snapshot_bytes(OLD)
    serve(httpserver, body, ETag='"v1"')
    data = poll(settings)
    only_request(data)
    cursor = data.cursor
    assert json.loads(cursor)["etag"] == '"v1"'
    # The next poll is conditional; the server says 304 and sends no body.
    httpserver.clear()
    httpserver.expect_request(PATH, headers={"If-None-Match": '"v1"'}).respond_with_data(
        "", status=304
    )
    assert skip_message(poll(settings, cursor)) == (
        f"unchanged: {httpserver.url_for(PATH)} answered 304 Not Modified"
    )
    # A changed resource answers 200 with a new ETag: a run.
    serve(httpserver, snapshot_bytes(NEW), ETag='"v2"')
    data = poll(settings, cursor)
    assert only_request(data).run_key.startswith(f"vercel:{sha(snapshot_bytes(NEW))}:")
    assert json.loads(data.cursor)["etag"] == '"v2"'


def test_last_modified_makes_an_unchanged_poll_a_304(polled, httpserver):
    settings = polled()
    stamp = "Tue, 01 Dec 2026 10:00:00 GMT"
    serve(httpserver, snapshot_bytes(OLD), **{"Last-Modified": stamp})
    cursor = poll(settings).cursor
    httpserver.clear()
    httpserver.expect_request(PATH, headers={"If-Modified-Since": stamp}).respond_with_data(
        "", status=304
    )
    assert "304 Not Modified" in skip_message(poll(settings, cursor))


def test_a_failing_poll_is_visible_and_launches_nothing(polled, httpserver):
    settings = polled(http_max_retries=0)
    httpserver.expect_request(PATH).respond_with_data("upstream down", status=503)
    with pytest.raises(Exception, match="HTTP 503"):
        poll(settings)


def test_a_poll_that_times_out_is_visible_and_launches_nothing(polled, httpserver):
    settings = polled(http_max_retries=0, http_timeout_seconds=0.5)

    def slow(request):
        time.sleep(2)
        return Response(snapshot_bytes(OLD))

    httpserver.expect_request(PATH).respond_with_handler(slow)
    with pytest.raises(Exception, match="(?i)timeout|timed out"):
        poll(settings)


def test_a_verified_unchanged_run_writes_nothing_and_leaves_every_table_as_it_was(
    run_sync, httpserver, db
):
    serve(httpserver, snapshot_bytes(NEW))
    url = httpserver.url_for(PATH)
    assert run_sync(url).success
    before = {name: db.execute(query).fetchall() for name, query in TABLES.items()}
    runs_before = db.execute("SELECT count(*) FROM model_sync_runs").fetchone()[0]

    result = run_sync(url)
    assert result.success
    after = {name: db.execute(query).fetchall() for name, query in TABLES.items()}
    assert after == before
    # The sync is recorded, as verified-unchanged, with the catalog's counts.
    assert db.execute("SELECT count(*) FROM model_sync_runs").fetchone()[0] == runs_before + 1
    unchanged, body, total, unchanged_count, created = db.execute(
        "SELECT unchanged_body, body_sha256, total, unchanged, created FROM model_sync_runs "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert (unchanged, body, total, unchanged_count, created) == (
        True,
        sha(snapshot_bytes(NEW)),
        232,
        232,
        0,
    )
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey(["vercel", "ai_models"])
    ]
    assert event.materialization.metadata["unchanged_body"].value is True


def test_a_changed_response_goes_all_the_way_through(polled, httpserver, run_sync, db, instance):
    settings = polled()
    serve(httpserver, snapshot_bytes(OLD))
    assert run_sync(httpserver.url_for(PATH)).success
    body = json.loads(snapshot_bytes(OLD))
    for model in body["data"]:
        if model["id"] == "openai/gpt-4o":
            model["pricing"]["input"] = "0.000002"  # 2.5 → 2 per 1M
    changed = json.dumps(body).encode()
    serve(httpserver, changed)
    request = only_request(poll(settings))
    # The run the sensor asks for: the job, for the source's assets, as the daemon launches it.
    job = build_definitions(settings).resolve_job_def(SYNC_JOB_NAME)
    result = job.execute_in_process(
        instance=instance, asset_selection=list(request.asset_selection), tags=request.tags
    )
    assert result.success
    assert db.execute(
        "SELECT cost_per_1m_input::text FROM ai_models WHERE model_id = 'openai/gpt-4o'"
    ).fetchone() == ("2",)
    assert skip_message(poll(settings)).startswith("unchanged: body sha256 ")


def test_polling_is_on_with_the_schedule_and_off_at_zero(settings):
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def(SENSOR)
    assert sensor.minimum_interval_seconds == 60
    assert sensor.default_status.value == "RUNNING"
    stopped = build_definitions(settings.model_copy(update={"enabled": False}))
    assert stopped.resolve_sensor_def(SENSOR).default_status.value == "STOPPED"
    off = build_definitions(settings.model_copy(update={"poll_seconds": 0}))
    assert SENSOR not in {s.name for s in off.sensors}


def test_the_first_poll_of_a_fresh_database_launches_the_first_sync(
    settings, httpserver, empty_database_url
):
    """`dagster dev` on a new machine: the database has no schema until the first sync migrates
    it, and the sensors only read. The change sensor takes that as "never synced" (a run, not
    a tick error), and the webhook sensor has nothing to deliver yet."""
    fresh = configure(
        settings.model_copy(update={"database_url": empty_database_url}),
        httpserver.url_for(PATH),
        webhook_urls=["http://127.0.0.1:9/hook"],
        webhook_secret="a-webhook-signing-secret",
    )
    serve(httpserver, snapshot_bytes(OLD))
    request = only_request(poll(fresh))
    assert request.run_key == (
        f"vercel:{sha(snapshot_bytes(OLD))}:{transform_version(get_source('vercel'))}"
    )
    webhook_sensor = build_definitions(fresh).resolve_sensor_def("webhook_delivery_sensor")
    resources = {
        "catalog": CatalogDatabase.from_settings(fresh),
        "change_feed": ChangeFeed.from_settings(fresh),
    }
    with build_sensor_context(resources=resources) as context:
        data = webhook_sensor.evaluate_tick(context)
    assert not data.run_requests
    assert data.skip_message == "nothing to deliver: the catalog has not been synced yet"
    # Neither sensor created anything: readers never migrate.
    with psycopg.connect(empty_database_url) as db:
        assert db.execute("SELECT to_regclass('model_sync_runs')").fetchone() == (None,)
