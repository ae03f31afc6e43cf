"""Syncs that overlap: a schedule and a manual run, two workers, readers during a write.

Syncs of one source serialize on a Postgres advisory lock taken at the start of their single
transaction. With ``MODEL_SYNC_CONCURRENT_SYNC=wait`` the later one waits (up to the lock
timeout) and then runs against the state the first one committed; with ``skip`` it ends without
materializing. Readers never wait and never see a half-written catalog. These tests make the
overlap certain rather than lucky: a test session holds the lock, or a real sync is held
mid-transaction by a row lock, or a TCP proxy holds one session's next message on the wire.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from model_sync.settings import ConcurrentSync
from model_sync.store.database import sqlalchemy_url
from model_sync.store.sync import SyncRefused
from model_sync_tests.conftest import run_logs
from model_sync_tests.snapshots import snapshot_models, snapshot_path
from model_sync_tests.test_db_faults import (
    DEADLINE_SECONDS,
    NEW,
    OLD,
    OLD_TO_NEW,
    SYNC_STEP,
    SyncThread,
    assert_whole_catalog,
    blocked_sync,
    catalog_state,
    counts_of,
    main_command_env,
    materialized,
    set_user_settings,
    snapshot_ids,
    start_main_command,
    step_failures,
    sync,
    sync_request,
    user_settings,
)

# An older recorded response (139 models): the two concurrent runs below each change it in
# their own way, so their counts show which state each one started from.
SEED = "models-2025-10-27.json"
# The advisory key, computed as model_sync.store.sync documents it: crc32("model_sync:<source>").
VERCEL_LOCK_KEY = zlib.crc32(b"model_sync:vercel")
COUNT_KEYS = ("created", "updated", "unchanged", "deactivated", "reactivated")
BUSY_MESSAGE = "another vercel sync is running; this one was skipped"


def plain_diff(previous: dict, current: dict, seen: set[str]) -> dict[str, int]:
    """What a sync of ``current`` onto a catalog holding ``previous`` must count (``seen`` = every
    id ever stored), derived from the responses alone, independently of the sync's SQL."""
    added = current.keys() - previous.keys()
    common = current.keys() & previous.keys()
    return {
        "created": len(added - seen),
        "updated": sum(1 for k in common if current[k] != previous[k]),
        "unchanged": sum(1 for k in common if current[k] == previous[k]),
        "deactivated": len(previous.keys() - current.keys()),
        "reactivated": len(added & seen),
    }


def expected_serial_counts(seed: str, first: str, second: str) -> list[dict[str, int]]:
    """The counts of ``first`` then ``second``, each run on the state the previous one left."""
    states = [{m["id"]: m for m in snapshot_models(name)} for name in (seed, first, second)]
    return [
        plain_diff(states[0], states[1], set(states[0])),
        plain_diff(states[1], states[2], set(states[0]) | set(states[1])),
    ]


def advisory_waiters(db: psycopg.Connection) -> int:
    """Sessions of this database queued on the vercel sync lock."""
    (waiting,) = db.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND NOT l.granted AND l.classid = 0 "
        "AND l.objid::bigint = %s AND d.datname = current_database()",
        (VERCEL_LOCK_KEY,),
    ).fetchone()
    return waiting


def test_two_runs_started_together_in_wait_mode_run_one_after_the_other(
    database_url: str, db: psycopg.Connection, engine: Engine, tmp_path: Path
):
    """Two `dagster asset materialize` processes with different responses, started at once.

    A test session holds the sync lock until both processes queue on it, so they really
    contend. Both must succeed, one after the other: the second's counts are those of a diff
    against the first's committed catalog (run interleaved, both would diff against the seed),
    no model is stored twice, and the user columns set before survive both.
    """
    sync(engine, SEED)
    settings = set_user_settings(db)
    env = {
        name: main_command_env(
            database_url, name, concurrent_sync="wait", lock_timeout_seconds="120"
        )
        for name in (OLD, NEW)
    }
    runs = []
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (VERCEL_LOCK_KEY,))
        try:
            for name in (OLD, NEW):
                runs.append(start_main_command(env[name], tmp_path))
            deadline = time.monotonic() + DEADLINE_SECONDS
            while advisory_waiters(db) < 2:
                assert all(run.running() for run in runs), [run.stop()[-3000:] for run in runs]
                assert time.monotonic() < deadline, "the two runs never queued on the sync lock"
                time.sleep(0.05)
            holder.execute("SELECT pg_advisory_unlock(%s)", (VERCEL_LOCK_KEY,))
            for run in runs:
                run.process.wait(DEADLINE_SECONDS)
        finally:
            outputs = [run.stop() for run in runs]

    for run, output in zip(runs, outputs, strict=True):
        assert run.process.returncode == 0, output[-3000:]
        assert "AI Models sync completed successfully" in output, output[-3000:]

    rows = db.execute(
        f"SELECT total, {', '.join(COUNT_KEYS)} FROM model_sync_runs "
        "WHERE status = 'success' ORDER BY id"
    ).fetchall()
    # The seed, then the two concurrent runs in commit order; no failed attempt in between.
    assert db.execute("SELECT status, count(*) FROM model_sync_runs GROUP BY 1").fetchall() == [
        ("success", 3)
    ]
    by_total = {len(snapshot_ids(name)): name for name in (OLD, NEW)}
    first, second = (by_total[row[0]] for row in rows[1:])
    assert {first, second} == {OLD, NEW}
    observed = [dict(zip(COUNT_KEYS, row[1:], strict=True)) for row in rows[1:]]
    assert observed == expected_serial_counts(SEED, first, second)
    assert_whole_catalog(db, second)
    assert user_settings(db, settings) == settings


def test_skip_mode_run_ends_without_materializing_while_another_sync_writes(
    engine: Engine, database_url: str, db: psycopg.Connection, run_sync, instance
):
    """With MODEL_SYNC_CONCURRENT_SYNC=skip a run that finds a sync in progress steps aside.

    The other sync is a real one, held mid-transaction (holding the lock) by a row lock. The
    skipped run succeeds without materializing ai_models, says why in its log, and writes
    nothing, not even a run row; the held sync then completes normally.
    """
    sync(engine, OLD)
    settings = set_user_settings(db)
    before = catalog_state(db)

    with blocked_sync(engine, database_url, db, NEW, lock_timeout_seconds=60) as (
        held,
        _backend,
        blocker,
    ):
        result = run_sync(str(snapshot_path(NEW)), concurrent_sync=ConcurrentSync.SKIP)
        assert result.success, step_failures(result)
        assert not materialized(result, "ai_models")
        assert any(BUSY_MESSAGE in line for line in run_logs(instance, result))
        assert catalog_state(db) == before
        blocker.rollback()
        held.join()

    assert held.error is None, repr(held.error)
    assert counts_of(held.result) == OLD_TO_NEW
    assert_whole_catalog(db, NEW)
    assert db.execute("SELECT status, count(*) FROM model_sync_runs GROUP BY 1").fetchall() == [
        ("success", 2)
    ]
    assert user_settings(db, settings) == settings


def test_wait_mode_run_fails_on_the_lock_timeout_while_another_sync_writes(
    engine: Engine, database_url: str, db: psycopg.Connection, run_sync
):
    """With wait and a 0.5 s lock timeout, a run behind a long sync fails with the lock message.

    Each of its three attempts (the retry policy's 5 s + 15 s delays are waited once here)
    gives up after the lock timeout and is recorded as a failed run; the catalog stays as the
    held sync's predecessor left it, and the held sync then completes normally.
    """
    sync(engine, OLD)
    before = catalog_state(db, ("ai_models", "ai_model_versions", "ai_model_changes"))

    with blocked_sync(engine, database_url, db, NEW, lock_timeout_seconds=120) as (
        held,
        _backend,
        blocker,
    ):
        result = run_sync(
            str(snapshot_path(NEW)), concurrent_sync=ConcurrentSync.WAIT, lock_timeout_seconds=0.5
        )
        assert not result.success
        assert step_failures(result) == {
            SYNC_STEP: "AI Models sync failed: timed out waiting for a lock held by another "
            "session (MODEL_SYNC_LOCK_TIMEOUT_SECONDS); nothing was written: canceling statement "
            "due to lock timeout"
        }
        assert not materialized(result, "ai_models")
        assert catalog_state(db, ("ai_models", "ai_model_versions", "ai_model_changes")) == before
        blocker.rollback()
        held.join()

    assert held.error is None, repr(held.error)
    assert counts_of(held.result) == OLD_TO_NEW
    failed = db.execute(
        "SELECT error FROM model_sync_runs WHERE status = 'failed' ORDER BY id"
    ).fetchall()
    assert len(failed) == 3, failed
    assert all(error.startswith("timed out waiting for a lock") for (error,) in failed), failed


def test_reader_sees_only_whole_catalogs_while_syncs_alternate(
    engine: Engine, database_url: str, db: psycopg.Connection
):
    """A reader polling during 10 alternating syncs of two real responses sees whole states only.

    Every observation (one statement, so one snapshot) must be exactly the empty catalog, the
    144-model response or the 232-model one — never a mix — and agree with the history (one
    open version per model, same active state). The writer waits for an observation after
    each sync, and the reader must have observed while a sync was in flight.
    """
    allowed = {frozenset(): "initial", snapshot_ids(OLD): OLD, snapshot_ids(NEW): NEW}
    order = [OLD, NEW] * 5
    writing = threading.Event()
    done = threading.Event()
    observations: list[tuple[str | None, bool, int, int]] = []  # state, in flight, count, drift
    reader_errors: list[BaseException] = []

    def read() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as reader:
                deadline = time.monotonic() + DEADLINE_SECONDS
                while not done.is_set() and time.monotonic() < deadline:
                    in_flight = writing.is_set()
                    count, ids, drift = reader.execute(
                        "SELECT count(*) FILTER (WHERE is_active), "
                        "coalesce(array_agg(model_id) FILTER (WHERE is_active), '{}'), "
                        "(SELECT count(*) FROM ai_models t WHERE (SELECT count(*) "
                        " FROM ai_model_versions v WHERE v.source = t.source "
                        " AND v.model_id = t.model_id AND v.valid_to IS NULL "
                        " AND v.is_active = t.is_active) <> 1) "
                        "FROM ai_models"
                    ).fetchone()
                    observations.append((allowed.get(frozenset(ids)), in_flight, count, drift))
        except BaseException as error:  # reported by the test below
            reader_errors.append(error)

    reader = threading.Thread(target=read, daemon=True, name="reader")
    reader.start()
    try:
        for name in order:
            writing.set()
            try:
                sync(engine, name)
            finally:
                writing.clear()
            seen = len(observations)
            deadline = time.monotonic() + DEADLINE_SECONDS
            while len(observations) <= seen + 1 and reader.is_alive():
                assert time.monotonic() < deadline, "the reader stopped observing"
                time.sleep(0.001)
    finally:
        done.set()
        reader.join(DEADLINE_SECONDS)
    assert not reader.is_alive() and not reader_errors, reader_errors

    total = len(observations)
    mixed = [o for o in observations if o[0] is None]
    assert not mixed, f"{len(mixed)} of {total} reads saw a mix of two catalogs"
    miscounted = [o for o in observations if o[2] != len(state_ids(o[0]))]
    assert not miscounted, f"{len(miscounted)} of {total} reads counted other rows than listed"
    drifted = [o for o in observations if o[3]]
    assert not drifted, f"{len(drifted)} of {total} reads saw ai_models and its history disagree"
    assert {state for state, *_ in observations} >= {OLD, NEW}
    during = sum(1 for _, in_flight, *_ in observations if in_flight)
    assert during >= len(order), f"only {during} of {total} reads overlapped a sync"
    assert_whole_catalog(db, order[-1])
    (successes,) = db.execute(
        "SELECT count(*) FROM model_sync_runs WHERE status = 'success'"
    ).fetchone()
    assert successes == len(order)


def state_ids(state: str) -> frozenset[str]:
    return frozenset() if state == "initial" else snapshot_ids(state)


# --- A sync whose transaction began before another committed ----------------------------------


class GatedProxy:
    """A TCP proxy to Postgres that holds back the first client message containing ``gate``.

    It stands for a slow network between the sync's process and the server: the message is
    merely late, exactly as if it had crossed a long link. Nothing in the sync is patched.
    """

    def __init__(self, upstream: tuple[str, int], gate: bytes) -> None:
        self.upstream = upstream
        self.gate = gate
        self.reached = threading.Event()
        self.released = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        # accept() is not woken by close() from another thread; a short timeout lets it notice.
        self.listener.settimeout(0.1)
        self.closing = threading.Event()
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True, name="proxy")]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            server = socket.create_connection(self.upstream, timeout=5)
            server.settimeout(None)
            self.sockets += [client, server]
            for source, sink, gated in ((client, server, True), (server, client, False)):
                pump = threading.Thread(
                    target=self._pump, args=(source, sink, gated), daemon=True, name="proxy-pump"
                )
                self.threads.append(pump)
                pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket, gated: bool) -> None:
        tail = b""
        try:
            while chunk := source.recv(65536):
                if gated and not self.released.is_set() and self.gate in tail + chunk:
                    self.reached.set()
                    self.released.wait(DEADLINE_SECONDS)
                tail = (tail + chunk)[-len(self.gate) :]
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.released.set()
        self.closing.set()
        self.threads[0].join(DEADLINE_SECONDS)
        self.listener.close()
        for sock in self.sockets:
            with suppress(OSError):
                sock.close()
        for thread in self.threads:
            thread.join(DEADLINE_SECONDS)


@contextmanager
def slow_link_engine(database_url: str, gate: bytes) -> Iterator[tuple[Engine, GatedProxy]]:
    """An engine whose connections go through a :class:`GatedProxy` (plain TCP, no TLS)."""
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    proxy = GatedProxy((info.get("host", "127.0.0.1"), int(info.get("port", 5432))), gate)
    url = (
        f"postgresql://{info.get('user', 'postgres')}@127.0.0.1:{proxy.port}/{info['dbname']}"
        "?sslmode=disable"
    )
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        yield engine, proxy
    finally:
        proxy.released.set()
        engine.dispose()
        proxy.close()


def test_sync_that_began_before_another_committed_waits_instead_of_being_refused(
    engine: Engine, database_url: str, db: psycopg.Connection
):
    """Two syncs of the same response start together (a schedule and a manual run) in wait mode.

    Sync A has begun its transaction and its lock request is still on the wire (a slow link;
    without one the same interleaving happens by chance in 7-18 % of simultaneous starts on
    loopback, measured with two threads) when sync B takes the lock, writes and commits. A must
    then run on B's state — a no-op — like any waiting sync. It must not be refused as "older
    than the newest recorded version": that refusal is final (never retried) and its message
    blames the response.
    """
    sync(engine, OLD)

    with slow_link_engine(database_url, b"pg_advisory_xact_lock") as (slow_engine, proxy):
        late = SyncThread(slow_engine, sync_request(NEW)).start()
        try:
            assert proxy.reached.wait(DEADLINE_SECONDS), "the sync never asked for its lock"
            first = sync(engine, NEW)  # takes the lock, writes and commits meanwhile
            assert counts_of(first) == OLD_TO_NEW
        finally:
            proxy.released.set()
            late.join()

    if isinstance(late.error, SyncRefused):
        raise AssertionError(f"the waiting sync was refused: {late.error}") from late.error
    assert late.error is None, repr(late.error)
    assert counts_of(late.result) == {
        "created": 0,
        "updated": 0,
        "deactivated": 0,
        "reactivated": 0,
    }
    assert_whole_catalog(db, NEW)
    assert db.execute("SELECT status, count(*) FROM model_sync_runs GROUP BY 1").fetchall() == [
        ("success", 3)
    ]
