"""The change feed end to end: real syncs, real Postgres, real HTTP receivers on loopback.

The receivers here play the subscriber's part and check what a subscriber would check: the
signature is recomputed with ``hmac`` from the exact bytes received (never with our own
``sign``), and de-duplication is judged on the delivery id header. Every retry is driven
through the public paths — another sync, the ``ChangeFeed`` resource, or the sensor — with a
zero backoff so a failed event is due again at once.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest
from dagster import SkipReason, build_sensor_context
from pytest_httpserver import HTTPServer
from werkzeug import Response

from model_sync.definitions import build_definitions
from model_sync.resources import ChangeFeed
from model_sync.sensors import SENSOR_NAME, WebhookDeliveriesFailing
from model_sync.settings import Settings, SettingsError, WebhookSettings
from model_sync.webhooks import MAX_BACKOFF, backoff_seconds, deliver_pending, verify
from model_sync_tests.conftest import configure
from model_sync_tests.snapshots import snapshot_models
from model_sync_tests.test_sync import (
    check_evaluation,
    materialization_metadata,
    serve,
    serve_models,
)

SECRET = "change-feed-test-secret"
SNAPSHOT = "models-2025-11-18.json"
SNAPSHOT_SIZE = 144
# In the snapshot: input "0.00000006" per token, i.e. 0.06 per million tokens.
PRICED_MODEL = "alibaba/qwen-3-14b"
NEW_INPUT_PRICE = "0.00000009"
COUNT_KEYS = {
    "total",
    "created",
    "updated",
    "unchanged",
    "deactivated",
    "reactivated",
    "failed",
    "stale",
}
CHECK_NAME = "ai_models_webhook_deliveries"
# A created model's change entry carries no field-level detail.
CREATED_ENTRY = {
    "change_type": "created",
    "field": None,
    "old": None,
    "new": None,
    "relative_change": None,
}


# --- a subscriber ------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One POST as the subscriber received it: the raw body bytes and its headers."""

    path: str
    body: bytes
    headers: dict[str, str]
    status: int

    @property
    def payload(self) -> dict:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers["x-model-sync-delivery"]


class Receiver:
    """A webhook subscriber: its own pytest-httpserver, separate from the gateway's."""

    def __init__(self, port: int = 0, *, threaded: bool = False) -> None:
        self.server = HTTPServer(host="127.0.0.1", port=port, threaded=threaded)

    def start(self) -> Receiver:
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    def url(self, path: str = "/hooks") -> str:
        return self.server.url_for(path)

    def answer(self, path: str, *statuses: int, then: int = 200) -> None:
        """Answer ``statuses`` one request at a time, then ``then`` for every later request."""
        for status in statuses:
            self.server.expect_oneshot_request(path, method="POST").respond_with_data(
                "", status=status
            )
        self.server.expect_request(path, method="POST").respond_with_data("", status=then)

    def deliveries(self, path: str | None = None) -> list[Delivery]:
        received = [
            Delivery(
                path=request.path,
                body=request.get_data(),
                headers={key.lower(): value for key, value in request.headers.items()},
                status=response.status_code,
            )
            for request, response in self.server.log
        ]
        return [d for d in received if path is None or d.path == path]


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Every receiver a test creates; all are stopped at teardown, even on failure."""
    created: list[Receiver] = []
    yield created
    for receiver in created:
        receiver.stop()


@pytest.fixture
def receiver(receivers: list[Receiver]) -> Receiver:
    """A running subscriber on a free loopback port."""
    started = Receiver().start()
    receivers.append(started)
    return started


def free_port() -> int:
    """A loopback port nothing listens on (until a test starts a receiver there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- helpers ----------------------------------------------------------------------------


def feed(*urls: str, **overrides) -> dict:
    """Setting overrides that subscribe ``urls``; retries are due immediately."""
    return {
        "webhook_urls": list(urls),
        "webhook_secret": SECRET,
        "webhook_backoff_seconds": 0.0,
        "webhook_timeout_seconds": 2.0,
        **overrides,
    }


def change_feed(*urls: str) -> ChangeFeed:
    """The resource the job and the sensor use, configured like ``feed``."""
    return ChangeFeed(
        settings=WebhookSettings(
            urls=list(urls), secret=SECRET, timeout_seconds=2.0, backoff_seconds=0.0
        )
    )


def repriced(models: list[dict]) -> list[dict]:
    """The snapshot with PRICED_MODEL's input price moved from 0.06 to 0.09 per million."""
    changed = copy.deepcopy(models)
    [model] = [m for m in changed if m["id"] == PRICED_MODEL]
    assert model["pricing"]["input"] == "0.00000006"
    model["pricing"]["input"] = NEW_INPUT_PRICE
    return changed


def outbox(db) -> list[dict]:
    """Every outbox row, oldest first, as plain dicts."""
    cursor = db.execute(
        "SELECT id, delivery_id::text AS delivery_id, sync_id, subscriber_url, attempts, "
        "delivered_at, last_status, last_error, payload FROM webhook_outbox ORDER BY id"
    )
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def assert_signed(delivery: Delivery) -> None:
    """What a subscriber checks: HMAC-SHA256 of the exact received bytes, and the headers."""
    expected = "sha256=" + hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(delivery.headers["x-model-sync-signature"], expected)
    assert delivery.headers["x-model-sync-event"] == "catalog.changed"
    assert str(uuid.UUID(delivery.delivery_id)) == delivery.delivery_id
    assert delivery.headers["content-type"] == "application/json"


def assert_payload_describes_run(payload: dict, result, db) -> None:
    """The envelope names this run and sync, and its counts equal the run's metadata."""
    meta = materialization_metadata(result, "ai_models")
    assert payload["event"] == "catalog.changed"
    assert payload["sync_id"] == meta["sync_id"]
    assert payload["run_id"] == result.run_id
    assert payload["source"] == "vercel"
    assert set(payload["counts"]) == COUNT_KEYS
    assert payload["counts"] == {key: meta[key] for key in COUNT_KEYS}
    [(effective_at,)] = db.execute(
        "SELECT effective_at FROM model_sync_runs WHERE id = %s", (meta["sync_id"],)
    ).fetchall()
    assert datetime.fromisoformat(payload["effective_at"]) == effective_at


def sensor_tick(settings: Settings):
    """One evaluation of the delivery sensor with the code location's own resources."""
    defs = build_definitions(settings)
    sensor_def = defs.resolve_sensor_def(SENSOR_NAME)
    return sensor_def(build_sensor_context(resources=defs.resources))


# --- 1. what a sync sends ------------------------------------------------------------------


def test_first_sync_posts_one_signed_event_per_subscriber_listing_every_created_model(
    run_sync, httpserver, receiver, db
):
    """Each subscriber gets its own copy (own delivery id), signed over the exact bytes sent."""
    for path in ("/a", "/b"):
        receiver.answer(path)
    models = snapshot_models(SNAPSHOT)
    result = run_sync(
        serve_models(httpserver, models), **feed(receiver.url("/a"), receiver.url("/b"))
    )
    assert result.success
    meta = materialization_metadata(result, "ai_models")
    assert meta["created"] == SNAPSHOT_SIZE
    assert (meta["webhook_events"], meta["webhooks_delivered"]) == (2, 2)

    deliveries = receiver.deliveries()
    assert sorted(d.path for d in deliveries) == ["/a", "/b"]
    for delivery in deliveries:
        assert_signed(delivery)
        assert_payload_describes_run(delivery.payload, result, db)
        changes = delivery.payload["changes"]
        assert sorted(c["model_id"] for c in changes) == sorted(m["id"] for m in models)
        without_ids = [{k: v for k, v in c.items() if k != "model_id"} for c in changes]
        assert without_ids == [CREATED_ENTRY] * SNAPSHOT_SIZE
    assert len({d.delivery_id for d in deliveries}) == 2
    assert deliveries[0].payload == deliveries[1].payload
    assert {(r["subscriber_url"], r["delivery_id"]) for r in outbox(db)} == {
        (receiver.url(d.path), d.delivery_id) for d in deliveries
    }


def test_a_changed_price_travels_as_exact_decimal_strings(run_sync, httpserver, receiver, db):
    """Old and new prices are JSON strings, so no subscriber ever parses them as floats."""
    receiver.answer("/hooks")
    models = snapshot_models(SNAPSHOT)
    subscribed = feed(receiver.url())
    assert run_sync(serve_models(httpserver, models), **subscribed).success
    result = run_sync(serve_models(httpserver, repriced(models)), **subscribed)
    assert result.success
    assert materialization_metadata(result, "ai_models")["updated"] == 1

    first, second = receiver.deliveries()
    assert first.delivery_id != second.delivery_id
    assert_signed(second)
    assert_payload_describes_run(second.payload, result, db)
    [change] = second.payload["changes"]
    assert change == {
        "model_id": PRICED_MODEL,
        "change_type": "price_changed",
        "field": "cost_per_1m_input",
        "old": "0.06",
        "new": "0.09",
        "relative_change": change["relative_change"],
    }
    assert isinstance(change["relative_change"], str)
    assert Decimal(change["relative_change"]) == Decimal("0.5")


# --- 2. nothing to say, nothing sent -------------------------------------------------------


def test_a_sync_without_changes_sends_nothing(run_sync, httpserver, receiver, db):
    """An unchanged catalog is not news: no outbox row, no POST — on both paths.

    The very same body again takes the verified-unchanged path; the same models as other
    bytes (other JSON whitespace) take the full path, whose diff finds nothing to announce.
    """
    receiver.answer("/hooks")
    body = json.dumps({"object": "list", "data": snapshot_models(SNAPSHOT)}).encode()
    assert run_sync(serve(httpserver, body), **feed(receiver.url())).success
    assert len(receiver.deliveries()) == len(outbox(db)) == 1

    for served, unchanged_body in ((body, True), (body + b"\n", False)):
        result = run_sync(serve(httpserver, served), **feed(receiver.url()))
        assert result.success
        meta = materialization_metadata(result, "ai_models")
        assert meta["unchanged_body"] is unchanged_body
        assert (meta["created"], meta["updated"], meta["deactivated"]) == (0, 0, 0)
        assert meta["unchanged"] == SNAPSHOT_SIZE
        assert (meta["webhook_events"], meta["webhooks_delivered"], meta["webhooks_failed"]) == (
            0,
            0,
            0,
        )
        assert len(outbox(db)) == 1
        assert len(receiver.deliveries()) == 1


def test_a_sync_without_subscribers_writes_no_outbox_row(run_sync, httpserver, db):
    """Events exist only for configured subscribers; a secret alone subscribes nobody."""
    result = run_sync(serve_models(httpserver, snapshot_models(SNAPSHOT)), webhook_secret=SECRET)
    assert result.success
    assert materialization_metadata(result, "ai_models")["created"] == SNAPSHOT_SIZE
    assert outbox(db) == []


# --- 3. retries ----------------------------------------------------------------------------


def test_a_failing_subscriber_gets_the_same_event_again_until_it_answers_2xx(
    run_sync, httpserver, receiver, db, engine
):
    """Two 500s, then 200: three attempts of one event, one delivery id, then delivered.

    The second sync serves the very same body, so it takes the verified-unchanged path
    (asserted): a sync that writes nothing still delivers what is pending."""
    receiver.answer("/hooks", 500, 500, then=200)
    url = serve_models(httpserver, snapshot_models(SNAPSHOT))
    first = run_sync(url, **feed(receiver.url()))
    assert first.success
    meta = materialization_metadata(first, "ai_models")
    assert (meta["webhook_events"], meta["webhooks_delivered"], meta["webhooks_failed"]) == (
        1,
        0,
        1,
    )

    # A later sync with no changes of its own (the same body: verified unchanged) still
    # retries what is pending.
    second = run_sync(url, **feed(receiver.url()))
    assert second.success
    second_meta = materialization_metadata(second, "ai_models")
    assert (second_meta["unchanged_body"], second_meta["webhooks_failed"]) == (True, 1)
    [row] = outbox(db)
    assert (row["attempts"], row["delivered_at"], row["last_status"]) == (2, None, 500)
    assert row["last_error"] == "HTTP 500"

    report = change_feed(receiver.url()).deliver(engine)
    assert (report.delivered, report.failed) == (1, 0)

    deliveries = receiver.deliveries()
    assert [d.status for d in deliveries] == [500, 500, 200]
    assert {d.delivery_id for d in deliveries} == {row["delivery_id"]}
    assert {d.body for d in deliveries} == {deliveries[0].body}
    for delivery in deliveries:
        assert_signed(delivery)
    assert deliveries[0].payload["sync_id"] == meta["sync_id"]
    [row] = outbox(db)
    assert row["attempts"] == 3
    assert row["delivered_at"] is not None
    assert (row["last_status"], row["last_error"]) == (200, None)


# --- 4. no loss while the subscriber is down -----------------------------------------------


def test_events_survive_a_subscriber_that_is_down_for_two_syncs(
    run_sync, httpserver, receivers, db, engine
):
    """Delivery never blocks a sync; once the subscriber is up, one pass sends each event once."""
    port = free_port()
    subscriber = f"http://127.0.0.1:{port}/hooks"
    models = snapshot_models(SNAPSHOT)

    first = run_sync(serve_models(httpserver, models), **feed(subscriber))
    second = run_sync(serve_models(httpserver, repriced(models)), **feed(subscriber))
    assert first.success and second.success
    first_meta = materialization_metadata(first, "ai_models")
    second_meta = materialization_metadata(second, "ai_models")
    assert (first_meta["created"], second_meta["updated"]) == (SNAPSHOT_SIZE, 1)
    # The second sync retried the first event too: both failed, neither rolled anything back.
    assert (first_meta["webhooks_failed"], second_meta["webhooks_failed"]) == (1, 2)
    assert db.execute(
        "SELECT cost_per_1m_input::text FROM ai_models WHERE model_id = %s", (PRICED_MODEL,)
    ).fetchone() == ("0.09",)
    pending = outbox(db)
    assert [r["sync_id"] for r in pending] == [first_meta["sync_id"], second_meta["sync_id"]]
    assert [r["attempts"] for r in pending] == [2, 1]
    assert all(r["delivered_at"] is None and r["last_status"] is None for r in pending)
    assert all(r["last_error"].startswith("ConnectError") for r in pending)

    receiver = Receiver(port=port)
    receivers.append(receiver)
    receiver.start()
    receiver.answer("/hooks")
    report = change_feed(subscriber).deliver(engine)
    assert (report.delivered, report.failed, report.errors) == (2, 0, [])

    deliveries = receiver.deliveries()
    assert [d.payload["sync_id"] for d in deliveries] == [r["sync_id"] for r in pending]
    assert [d.delivery_id for d in deliveries] == [r["delivery_id"] for r in pending]
    assert len({d.delivery_id for d in deliveries}) == 2
    for delivery in deliveries:
        assert_signed(delivery)
    assert_payload_describes_run(deliveries[1].payload, second, db)
    assert all(r["delivered_at"] is not None for r in outbox(db))

    # Nothing is left to send: another pass posts nothing, so nothing arrives twice.
    again = change_feed(subscriber).deliver(engine)
    assert (again.delivered, again.failed) == (0, 0)
    assert len(receiver.deliveries()) == 2


def test_a_failed_event_waits_for_its_backoff_which_doubles(
    run_sync, httpserver, receiver, db, engine
):
    """A subscriber that is down is not hammered: each failure pushes the next try further out."""
    receiver.answer("/hooks", 500, 500, then=200)
    overrides = feed(receiver.url(), webhook_backoff_seconds=60.0)
    assert run_sync(serve_models(httpserver, snapshot_models(SNAPSHOT)), **overrides).success
    feed_resource = ChangeFeed(
        settings=WebhookSettings(urls=[receiver.url()], secret=SECRET, backoff_seconds=60.0)
    )

    def scheduled_delay() -> float:
        [(seconds,)] = db.execute(
            "SELECT extract(epoch FROM next_attempt_at - last_attempt_at)::float "
            "FROM webhook_outbox"
        ).fetchall()
        return seconds

    assert scheduled_delay() == 60.0
    report = feed_resource.deliver(engine)
    assert (report.delivered, report.failed) == (0, 0), "not due yet"
    assert len(receiver.deliveries()) == 1

    # Let the minute pass (in the data, not the clock): the retry fails and waits twice as long.
    db.execute("UPDATE webhook_outbox SET next_attempt_at = now()")
    assert feed_resource.deliver(engine).failed == 1
    assert scheduled_delay() == 120.0
    assert [d.status for d in receiver.deliveries()] == [500, 500]


def test_backoff_doubles_per_failure_and_is_capped_at_an_hour():
    assert [backoff_seconds(n, 30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_seconds(30, 30) == MAX_BACKOFF.total_seconds() == 3600
    # Just under the cap, exactly at it, and the first doubling past it.
    assert [backoff_seconds(n, 30) for n in (7, 8)] == [1920, 3600]
    assert [backoff_seconds(n, 225) for n in (4, 5, 6)] == [1800, 3600, 3600]
    assert backoff_seconds(5, 0) == 0


def test_one_delivery_pass_sends_at_most_its_limit_of_events(
    run_sync, httpserver, receiver, db, engine
):
    """A pass stops after ``limit`` events (100 by default); the rest wait for the next one.

    Four due events: a pass limited to 3 sends 3 (one past the limit is left), then a pass
    limited to 1 sends the last one (exactly as many events as its limit)."""
    paths = [f"/hooks/{index}" for index in range(4)]
    for path in paths:
        receiver.answer(path, 500, then=200)
    urls = [receiver.url(path) for path in paths]
    assert run_sync(serve_models(httpserver, snapshot_models(SNAPSHOT)), **feed(*urls)).success
    assert [r["attempts"] for r in outbox(db)] == [1, 1, 1, 1]

    settings = WebhookSettings(secret=SECRET, backoff_seconds=0.0)
    report = deliver_pending(engine, settings, limit=3)
    assert (report.delivered, report.failed) == (3, 0)
    assert [r["delivered_at"] is not None for r in outbox(db)] == [True, True, True, False]

    report = deliver_pending(engine, settings, limit=1)
    assert (report.delivered, report.failed) == (1, 0)
    assert all(r["delivered_at"] is not None for r in outbox(db))


def test_concurrent_delivery_passes_post_each_event_once(
    run_sync, httpserver, receivers, db, engine
):
    """The sensor and a sync may deliver at the same time; row locks keep them apart."""
    port = free_port()
    urls = [f"http://127.0.0.1:{port}/{name}" for name in ("a", "b", "c", "d")]
    assert run_sync(serve_models(httpserver, snapshot_models(SNAPSHOT)), **feed(*urls)).success
    assert [r["attempts"] for r in outbox(db)] == [1, 1, 1, 1]

    receiver = Receiver(port=port, threaded=True)
    receivers.append(receiver)
    receiver.start()

    def slow_ok(request) -> Response:
        time.sleep(0.3)  # long enough for the other pass to reach a locked row
        return Response("", status=200)

    for name in ("a", "b", "c", "d"):
        receiver.server.expect_request(f"/{name}", method="POST").respond_with_handler(slow_ok)
    start = threading.Barrier(2)
    reports = []

    def deliver() -> None:
        start.wait()
        reports.append(change_feed(*urls).deliver(engine))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sum(r.delivered for r in reports) == 4
    assert sum(r.failed for r in reports) == 0
    assert all(r.delivered for r in reports), "both passes did part of the work"
    received = sorted(d.delivery_id for d in receiver.deliveries())
    assert received == sorted(r["delivery_id"] for r in outbox(db))
    assert [r["attempts"] for r in outbox(db)] == [2, 2, 2, 2]


# --- 5. visibility -------------------------------------------------------------------------


def test_persistent_failures_turn_the_check_and_the_sensor_red_until_delivered(
    run_sync, httpserver, receiver, settings, db
):
    """Below the alert threshold the check passes; at it, check and sensor fail; then recover.

    Every sync after the first serves the very same body: the verified-unchanged path
    (asserted), which still delivers pending events and runs the check."""
    receiver.answer("/hooks", then=500)
    overrides = feed(receiver.url(), webhook_alert_after_attempts=2)
    url = serve_models(httpserver, snapshot_models(SNAPSHOT))

    first = run_sync(url, **overrides)
    assert first.success
    evaluation = check_evaluation(first, CHECK_NAME)
    assert evaluation.passed, "one failed attempt is a normal retry, not an alert"
    assert evaluation.metadata["pending_deliveries"].value == 1
    assert evaluation.metadata["failing_deliveries"].value == 0

    second = run_sync(url, **overrides)
    assert second.success, "a red check does not fail the sync itself"
    assert materialization_metadata(second, "ai_models")["unchanged_body"] is True
    evaluation = check_evaluation(second, CHECK_NAME)
    assert not evaluation.passed
    assert evaluation.metadata["failing_deliveries"].value == 1
    assert outbox(db)[0]["attempts"] == 2

    configured = configure(settings, url, **overrides)
    with pytest.raises(WebhookDeliveriesFailing, match=r"1 change-feed event\(s\) failed"):
        sensor_tick(configured)
    assert outbox(db)[0]["attempts"] == 3, "the sensor retried before raising"

    receiver.server.clear()
    receiver.answer("/hooks")
    tick = sensor_tick(configured)
    assert isinstance(tick, SkipReason)
    assert tick.skip_message == "delivered 1, 0 to retry later"
    assert outbox(db)[0]["delivered_at"] is not None
    assert [d.status for d in receiver.deliveries()] == [200]

    healthy = run_sync(url, **overrides)
    assert materialization_metadata(healthy, "ai_models")["unchanged_body"] is True
    evaluation = check_evaluation(healthy, CHECK_NAME)
    assert evaluation.passed
    assert evaluation.metadata["pending_deliveries"].value == 0


# --- 6. the receiver's side of the signature -------------------------------------------------


def test_verify_accepts_the_signed_body_and_rejects_any_tampering():
    """A subscriber using ``verify`` must refuse a body that differs by a single byte."""
    body = json.dumps(
        {"event": "catalog.changed", "changes": [{"field": "cost_per_1m_input", "new": "0.09"}]}
    ).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert verify(SECRET, body, signature)
    assert not verify(SECRET, body.replace(b"0.09", b"0.08"), signature)
    assert not verify(SECRET, body + b" ", signature)
    assert not verify("another-secret", body, signature)
    assert not verify(SECRET, body, signature.removeprefix("sha256="))


# --- 7. settings ---------------------------------------------------------------------------


def test_subscribers_without_a_secret_fail_at_load_naming_the_variable():
    """Unsigned events are never sent: the code location refuses to load instead."""
    with pytest.raises(SettingsError, match="MODEL_SYNC_WEBHOOK_SECRET"):
        Settings.from_env({"MODEL_SYNC_WEBHOOK_URLS": "https://hooks.example.com/catalog"})


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.com/catalog", "hooks.example.com/catalog", "file:///tmp/hook"]
)
def test_a_non_http_subscriber_url_is_refused(url):
    with pytest.raises(SettingsError, match=r"MODEL_SYNC_WEBHOOK_URLS: .* is not an http\(s\) URL"):
        Settings.from_env(
            {
                "MODEL_SYNC_WEBHOOK_URLS": f"https://ok.example.com/hook, {url}",
                "MODEL_SYNC_WEBHOOK_SECRET": SECRET,
            }
        )


def test_webhook_settings_parse_a_list_of_subscribers_and_their_retry_policy():
    parsed = Settings.from_env(
        {
            "MODEL_SYNC_WEBHOOK_URLS": "https://a.example.com/h, http://b.example.com/h",
            "MODEL_SYNC_WEBHOOK_SECRET": SECRET,
            "MODEL_SYNC_WEBHOOK_BACKOFF_SECONDS": "0",
            "MODEL_SYNC_WEBHOOK_ALERT_AFTER_ATTEMPTS": "2",
        }
    )
    assert parsed.webhooks.urls == ["https://a.example.com/h", "http://b.example.com/h"]
    assert (parsed.webhooks.secret, parsed.webhooks.backoff_seconds) == (SECRET, 0.0)
    assert parsed.webhooks.alert_after_attempts == 2
