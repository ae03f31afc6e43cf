"""The response archive: every distinct body stored once, compressed, in capture order; and a
fresh catalog's history rebuilt from it with the documented command."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Iterator

import pytest

from model_sync_tests.conftest import _drop, _new_database, _url_for, run_cli
from model_sync_tests.snapshots import snapshot_bytes, snapshot_path, vercel_snapshots

PATH = "/v1/models"
# Everything a sync owns in the history, in a stable order.
VERSION_ROWS = (
    "SELECT source, model_id, valid_from, valid_to, is_active, context_window, "
    "max_output_tokens, capabilities, deprecated_at, cost_per_1m_input::text, "
    "cost_per_1m_output::text, cost_per_1m_cache_read::text, cost_per_1m_cache_write::text, "
    "web_search_cost::text, input_tiers, output_tiers, pricing "
    "FROM ai_model_versions ORDER BY source, model_id, valid_from"
)


def serve(httpserver, body: bytes) -> str:
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")
    return httpserver.url_for(PATH)


@pytest.fixture
def second_database_url(template_database: str) -> Iterator[str]:
    name = _new_database(template_database)
    yield _url_for(name)
    _drop(name)


def test_each_distinct_body_is_stored_once_compressed_in_capture_order(run_sync, httpserver, db):
    first, second = "models-2025-11-13.json", "models-2025-11-18.json"
    for name in (first, second, second, first):
        assert run_sync(serve(httpserver, snapshot_bytes(name))).success
    archived = {
        sha: (source, byte_count, compression, bytes(body))
        for sha, source, byte_count, compression, body in db.execute(
            "SELECT sha256, source, byte_count, compression, body FROM response_archive"
        )
    }
    expected = {hashlib.sha256(snapshot_bytes(n)).hexdigest(): n for n in (first, second)}
    assert archived.keys() == expected.keys()
    for sha, (source, byte_count, compression, body) in archived.items():
        served = snapshot_bytes(expected[sha])
        assert (source, byte_count, compression) == ("vercel", len(served), "zlib")
        assert zlib.decompress(body) == served
        assert len(body) < len(served) / 4  # JSON catalogs compress well
    # A body repeated unchanged adds nothing; a return to an earlier body is a new capture.
    captures = [
        sha for (sha,) in db.execute("SELECT sha256 FROM response_captures ORDER BY fetched_at")
    ]
    assert [expected[sha] for sha in captures] == [first, second, first]


def test_a_refused_body_is_archived_too(run_sync, httpserver, db):
    models = json.loads(snapshot_bytes("models-2025-11-18.json"))["data"]
    assert run_sync(serve(httpserver, json.dumps({"object": "list", "data": models}).encode()))
    shrunk = json.dumps({"object": "list", "data": models[:10]}).encode()
    assert not run_sync(serve(httpserver, shrunk)).success  # the shrink guard refuses it
    assert db.execute(
        "SELECT count(*) FROM response_archive WHERE sha256 = %s",
        (hashlib.sha256(shrunk).hexdigest(),),
    ).fetchone() == (1,)


def test_rebuild_replays_the_archive_into_a_fresh_catalog_with_the_same_history(
    database_url, second_database_url, db
):
    """model-sync backfill fills one catalog (and its archive); model-sync rebuild --from it
    gives a fresh catalog the very same history."""
    folder = snapshot_path(vercel_snapshots()[0][0]).parent
    env = {**os.environ, "MODEL_SYNC_DATABASE_URL": database_url}
    done = run_cli("backfill", str(folder), env=env)
    assert done.returncode == 0, done.stderr
    rebuilt_env = {**os.environ, "MODEL_SYNC_DATABASE_URL": second_database_url}
    done = run_cli("rebuild", "--from", database_url, env=rebuilt_env)
    assert done.returncode == 0, done.stderr
    assert f"copied {len(vercel_snapshots())} captures" in done.stdout
    import psycopg

    with psycopg.connect(second_database_url) as rebuilt:
        assert rebuilt.execute(VERSION_ROWS).fetchall() == db.execute(VERSION_ROWS).fetchall()
        assert (
            rebuilt.execute("SELECT sha256, body FROM response_archive ORDER BY sha256").fetchall()
            == db.execute("SELECT sha256, body FROM response_archive ORDER BY sha256").fetchall()
        )
        # Running it again adds nothing: every capture is older than the history.
        again = run_cli("rebuild", env=rebuilt_env)
        assert again.returncode == 0, again.stderr
        assert (
            rebuilt.execute("SELECT count(*) FROM ai_model_versions").fetchone()
            == db.execute("SELECT count(*) FROM ai_model_versions").fetchone()
        )
