"""The whole sync job against a misbehaving gateway: a bad day must never damage the catalog.

Each test seeds a real database with a successful sync of a recorded gateway response, takes a
full copy of the ``ai_models`` table, then runs the real Dagster job again against a fault.
A transient fault must be ridden out; anything else must fail the run with a clear message
and leave every row exactly as it was, because downstream applications read this table.

The Vercel source's fetch, read and load run in one step (``vercel_catalog_sync``, the
multi-asset of ``vercel/gateway_models_raw``, ``vercel/ai_models_frame`` and
``vercel/ai_models``), so every fault fails that step; the message says which stage failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest
from dagster import DagsterEventType, ExecuteInProcessResult
from pytest_httpserver import HTTPServer

from model_sync_tests.snapshots import snapshot_bytes, snapshot_models
from model_sync_tests.test_gateway import (
    PATH,
    SNAPSHOT,
    SNAPSHOT_MODELS,
    envelope,
    raw_server,  # noqa: F401 (a fixture, used by the timeout fault)
    stall_before_headers,
)

# Fault runs stay fast: one retry, short backoff, short timeout.
FAST_SETTINGS = {"http_timeout_seconds": 0.5, "http_max_retries": 1, "http_backoff_seconds": 0.01}
# The one step that fetches, reads and loads the Vercel source.
SYNC_STEP = "vercel_catalog_sync"
CATALOG_ASSET = "vercel/ai_models"


@dataclass(frozen=True)
class CatalogState:
    """Everything a fault must not change: every stored row, and the successful-run count.

    Rows are kept as Postgres' own text of the whole row (so ``1.0`` vs ``1.00`` or a reordered
    JSON key would show), with the row version ``xmin``, which moves on any UPDATE, even one that
    writes identical values.
    """

    rows: list[tuple[str, str]]
    successful_runs: int


def catalog_state(db: psycopg.Connection) -> CatalogState:
    rows = db.execute("SELECT xmin::text, t::text FROM ai_models t ORDER BY model_id").fetchall()
    (successful,) = db.execute(
        "SELECT count(*) FROM model_sync_runs WHERE status = 'success'"
    ).fetchone()
    return CatalogState(rows=rows, successful_runs=successful)


def failed_runs(db: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(source, source_url, error) of every run recorded as failed."""
    return db.execute(
        "SELECT source, source_url, error FROM model_sync_runs WHERE status = 'failed' ORDER BY id"
    ).fetchall()


def failure_kinds(result: ExecuteInProcessResult) -> dict[str, str]:
    """Failed step → the ``failure_kind`` of its failure (gateway, refused, database, config)."""
    return {
        event.step_key: event.step_failure_data.user_failure_data.metadata["failure_kind"].value
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_FAILURE
    }


def step_failures(result: ExecuteInProcessResult) -> dict[str, str]:
    """Failed step → the description an operator reads in the Dagster UI."""
    failures = {}
    for event in result.all_events:
        if event.event_type != DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        failures[event.step_key] = (
            data.user_failure_data.description if data.user_failure_data else data.error.message
        )
    return failures


def materialized_metadata(result: ExecuteInProcessResult, asset: str) -> dict:
    """The ``ai_models`` materialization's metadata, as plain values."""
    (event,) = [
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == asset
    ]
    metadata = event.step_materialization_data.materialization.metadata
    return {key: value.value for key, value in metadata.items()}


@pytest.fixture
def seeded(httpserver: HTTPServer, run_sync, db: psycopg.Connection) -> CatalogState:
    """A catalog holding the recorded 144-model response, as after a normal nightly sync."""
    httpserver.expect_request(PATH).respond_with_data(
        snapshot_bytes(SNAPSHOT), content_type="application/json"
    )
    result = run_sync(httpserver.url_for(PATH), **FAST_SETTINGS)
    assert result.success, step_failures(result)
    httpserver.clear()

    state = catalog_state(db)
    assert len(state.rows) == SNAPSHOT_MODELS
    assert state.successful_runs == 1
    return state


# --- Transient faults: the run rides them out -------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param((500, b"upstream error", {}), id="500-then-200"),
        pytest.param((503, b"", {"Retry-After": "1"}), id="503-retry-after-then-200"),
        pytest.param((429, b'{"error": "rate limited"}', {"Retry-After": "1"}), id="429-then-200"),
    ],
)
def test_transient_fault_then_success_changes_nothing(
    httpserver: HTTPServer, run_sync, db: psycopg.Connection, seeded: CatalogState, fault
):
    """A retried fetch of an unchanged catalog is a no-op: 0 created, 0 updated, rows untouched.

    Not even ``updated_at`` may move, or every consumer would see 144 spurious changes. The
    body is byte for byte the seeded one, so the run is recorded as verified-unchanged.
    """
    status, body, headers = fault
    httpserver.expect_ordered_request(PATH).respond_with_data(body, status=status, headers=headers)
    httpserver.expect_ordered_request(PATH).respond_with_data(
        snapshot_bytes(SNAPSHOT), content_type="application/json"
    )

    result = run_sync(httpserver.url_for(PATH), **{**FAST_SETTINGS, "http_timeout_seconds": 5})

    assert result.success, step_failures(result)
    assert len(httpserver.log) == 2
    stats = materialized_metadata(result, CATALOG_ASSET)
    assert (stats["created"], stats["updated"], stats["deactivated"]) == (0, 0, 0)
    assert stats["unchanged"] == SNAPSHOT_MODELS
    # The same body as the last successful sync, read by the same code: verified unchanged.
    assert stats["unchanged_body"] is True
    after = catalog_state(db)
    assert after.rows == seeded.rows
    assert after.successful_runs == seeded.successful_runs + 1


# --- Faults that must fail the run and leave the catalog alone ---------------------------------


@dataclass(frozen=True)
class Fault:
    """How the gateway misbehaves, and what the failed run must say about it."""

    serve: Callable[[HTTPServer, Callable], str]  # (httpserver, raw_server) → gateway URL
    failed_step: str
    message: str
    records_failed_run: bool
    # Which stage failed, now that fetch, read and load share one step: "gateway" (fetch or
    # read) or "refused" (the sync's own guard).
    failure_kind: str


def _serve_body(body: bytes, content_type: str = "application/json"):
    def serve(httpserver: HTTPServer, start_raw_server) -> str:
        httpserver.expect_request(PATH).respond_with_data(body, content_type=content_type)
        return httpserver.url_for(PATH)

    return serve


def _serve_stall(httpserver: HTTPServer, start_raw_server) -> str:
    return start_raw_server(stall_before_headers).url


def _first_models(count: int) -> bytes:
    return envelope(snapshot_models(SNAPSHOT)[:count])


_SNAPSHOT_BYTES = snapshot_bytes(SNAPSHOT)
_HTML = b"<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"

FAULTS = {
    "timeout": Fault(
        _serve_stall, SYNC_STEP, "request failed after 1 retries: ReadTimeout", False, "gateway"
    ),
    "html-body": Fault(
        _serve_body(_HTML, "text/html"),
        SYNC_STEP,
        "response is not JSON",
        False,
        "gateway",
    ),
    "truncated-json": Fault(
        _serve_body(_SNAPSHOT_BYTES[: len(_SNAPSHOT_BYTES) // 2]),
        SYNC_STEP,
        "response is not JSON",
        False,
        "gateway",
    ),
    "empty-data": Fault(
        _serve_body(envelope([])),
        SYNC_STEP,
        "AI Models sync failed: the response has no valid models (0 served, 0 failed validation)",
        True,
        "refused",
    ),
    "all-models-invalid": Fault(
        _serve_body(envelope([{"id": ""}, {"name": "no id"}, "not a model"])),
        SYNC_STEP,
        "AI Models sync failed: the response has no valid models (3 served, 3 failed validation)",
        True,
        "refused",
    ),
    "most-models-missing": Fault(
        # 60 of 144 served: 84 would be deactivated, 58% > the 50% limit.
        _serve_body(_first_models(60)),
        SYNC_STEP,
        "AI Models sync failed: refusing to deactivate 84 of 144 active vercel models (58% > "
        "the limit of 50%, MODEL_SYNC_MAX_DEACTIVATION_SHARE)",
        True,
        "refused",
    ),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_fault_fails_the_run_and_leaves_the_catalog_untouched(
    httpserver: HTTPServer,
    raw_server,  # noqa: F811 (the fixture imported above)
    run_sync,
    db: psycopg.Connection,
    seeded: CatalogState,
    fault: Fault,
):
    """The run fails where the fault is detected, says why, and writes no catalog row.

    Fetch and read faults (no body, or a body that is not a model list) write no run, so
    only the sync's own refusals (empty list, deactivation guard) are recorded in
    ``model_sync_runs``, as failed runs with the reason.
    """
    url = fault.serve(httpserver, raw_server)

    result = run_sync(url, **FAST_SETTINGS)

    assert not result.success
    failures = step_failures(result)
    assert list(failures) == [fault.failed_step]
    assert fault.message in failures[fault.failed_step]
    assert failure_kinds(result) == {fault.failed_step: fault.failure_kind}
    assert catalog_state(db) == seeded
    recorded = failed_runs(db)
    if fault.records_failed_run:
        assert len(recorded) == 1
        source, source_url, error = recorded[0]
        assert (source, source_url) == ("vercel", url)
        assert fault.message.removeprefix("AI Models sync failed: ") in error
    else:
        assert recorded == []


def test_fetch_failure_names_url_status_and_body(
    httpserver: HTTPServer, run_sync, seeded: CatalogState
):
    """The step failure carries what the fetcher saw, so the UI shows it without digging."""
    body = json.dumps({"object": "list", "data": {"oops": True}}).encode()
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")
    url = httpserver.url_for(PATH)

    result = run_sync(url, **FAST_SETTINGS)

    assert not result.success
    message = step_failures(result)[SYNC_STEP]
    assert f"url: {url}" in message
    assert "HTTP 200" in message
    assert f"body starts: {body.decode()!r}" in message
    (failure,) = [
        event for event in result.all_events if event.event_type == DagsterEventType.STEP_FAILURE
    ]
    metadata = {
        key: value.value
        for key, value in failure.step_failure_data.user_failure_data.metadata.items()
    }
    assert metadata == {
        "failure_kind": "gateway",
        "url": url,
        "status": 200,
        "body_preview": body.decode(),
    }
