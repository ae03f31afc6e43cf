"""The catalog write against a misbehaving database and a dying process.

The promise: whatever the database, the network or the process does, the catalog in Postgres is
either the previous good state or the new good state — never half of each, never a duplicate,
never a lost user setting. Each test seeds a real database with a recorded gateway response,
sets user columns, takes a full copy of every table the sync writes, then makes the next sync
fail in a precise way with real sessions, real locks and real processes (no mocks):

* the sync is held mid-transaction by a second session's row lock on an ``ai_model_versions``
  row that the sync must close (its upsert of ``ai_models`` has already run by then), and is
  then cut off (``pg_terminate_backend``, SIGKILL of the run process) or times out;
* a table lock makes it wait up to ``lock_timeout``;
* the server is not there at all.

Afterwards every table must equal the copy row for row (including the row version ``xmin``),
and the next sync must behave exactly like the interrupted one should have.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import psycopg
import pytest
from dagster import AssetKey, DagsterEventType, ExecuteInProcessResult
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from model_sync.gateway import FetchedBody, GatewayFetcher
from model_sync.service import read_response
from model_sync.settings import SyncPolicy
from model_sync.sources import get_source
from model_sync.store.database import describe_database_error
from model_sync.store.sync import SyncRequest, SyncResult, sync_catalog
from model_sync.transform import NormalizedModels
from model_sync_tests.snapshots import snapshot_models, snapshot_path

SOURCE = "vercel"
VERCEL = get_source(SOURCE)
# The one step that fetches, normalizes and loads the vercel source's three assets.
SYNC_STEP = "vercel_catalog_sync"
OLD = "models-2025-11-18.json"  # 144 models
NEW = "models-2026-03-05.json"  # 232 models
# What syncing NEW onto a catalog holding exactly OLD writes (see test_sync's replay).
OLD_TO_NEW = {"created": 97, "updated": 134, "deactivated": 9, "reactivated": 0}
# Upper bound of every wait on another session or process in these tests.
DEADLINE_SECONDS = 60.0
# Every table the sync writes, in one transaction.
SYNC_TABLES = ("ai_models", "ai_model_versions", "ai_model_changes", "model_sync_runs")
README = Path(__file__).resolve().parent.parent / "README.md"


# --- Syncing recorded responses directly -------------------------------------------------------


@cache
def _snapshot_models(name: str) -> NormalizedModels:
    fetched = GatewayFetcher(url=str(snapshot_path(name))).fetch()
    assert isinstance(fetched, FetchedBody)
    return read_response(VERCEL, fetched)


def sync_request(name: str, **policy) -> SyncRequest:
    """What the sync service passes ``store.sync`` for this recorded response, under the
    default SyncPolicy with ``policy`` overrides (``lock_timeout_seconds=1.0`` …).

    Without the body's hash, so a later job run of the same file takes the full path."""
    models = _snapshot_models(name)
    return SyncRequest(
        source=VERCEL,
        models=replace(models, frame=models.frame.copy()),
        run_id=f"test-{uuid.uuid4().hex}",
        policy=SyncPolicy(**policy),
        source_url=str(snapshot_path(name)),
    )


def sync(engine: Engine, name: str, **overrides) -> SyncResult:
    return sync_catalog(engine, sync_request(name, **overrides), datetime.now(UTC))


def counts_of(result: SyncResult) -> dict[str, int]:
    counts = result.counts.as_dict()
    return {key: counts[key] for key in OLD_TO_NEW}


def snapshot_ids(name: str) -> frozenset[str]:
    return frozenset(model["id"] for model in snapshot_models(name))


def price_changed_ids(old: str, new: str) -> list[str]:
    """Models served by both responses whose pricing differs: the sync closes their versions."""
    before = {model["id"]: model.get("pricing") for model in snapshot_models(old)}
    after = {model["id"]: model.get("pricing") for model in snapshot_models(new)}
    return sorted(k for k in before.keys() & after.keys() if before[k] != after[k])


# --- What must not change -----------------------------------------------------------------------


def catalog_state(db: psycopg.Connection, tables: tuple[str, ...] = SYNC_TABLES) -> dict:
    """Every row of every table the sync writes, as Postgres' text of the whole row plus xmin.

    ``xmin`` moves on any write, even one that stores identical values, so a rolled-back sync
    that somehow left a rewritten row behind would show.
    """
    return {
        table: db.execute(f"SELECT xmin::text, t::text FROM {table} t ORDER BY 2").fetchall()
        for table in tables
    }


def set_user_settings(db: psycopg.Connection) -> dict[str, tuple[bool, int]]:
    """Users' own columns on every 5th model, including models the next response changes."""
    ids = [row[0] for row in db.execute("SELECT model_id FROM ai_models ORDER BY model_id")]
    settings = {model_id: (i % 2 == 0, 100 + i) for i, model_id in enumerate(ids[::5])}
    settings.update({model_id: (True, 7) for model_id in price_changed_ids(OLD, NEW)[:3]})
    settings = {model_id: value for model_id, value in settings.items() if model_id in ids}
    for model_id, (recommended, priority) in settings.items():
        db.execute(
            "UPDATE ai_models SET is_recommended = %s, priority = %s WHERE model_id = %s",
            (recommended, priority, model_id),
        )
    return settings


def user_settings(db: psycopg.Connection, ids) -> dict[str, tuple[bool, int]]:
    rows = db.execute(
        "SELECT model_id, is_recommended, priority FROM ai_models WHERE model_id = ANY(%s)",
        (list(ids),),
    ).fetchall()
    return {model_id: (recommended, priority) for model_id, recommended, priority in rows}


def assert_whole_catalog(db: psycopg.Connection, name: str) -> None:
    """The active models are exactly the response's, with one open version each, no duplicate."""
    active = {row[0] for row in db.execute("SELECT model_id FROM ai_models WHERE is_active")}
    assert active == snapshot_ids(name)
    assert db.execute(
        "SELECT count(*) FROM (SELECT 1 FROM ai_models GROUP BY source, model_id "
        "HAVING count(*) > 1) d"
    ).fetchone() == (0,)
    # Every stored model has exactly one open version, and it agrees on the active state.
    assert db.execute(
        "SELECT count(*) FROM ai_models t WHERE (SELECT count(*) FROM ai_model_versions v "
        "WHERE v.source = t.source AND v.model_id = t.model_id AND v.valid_to IS NULL "
        "AND v.is_active = t.is_active) <> 1"
    ).fetchone() == (0,)


# --- Holding a sync mid-transaction -------------------------------------------------------------


@contextmanager
def versions_locked(database_url: str, model_ids: list[str]) -> Iterator[psycopg.Connection]:
    """A second session holding row locks on the open versions of ``model_ids``.

    The sync closes those versions after it has upserted ``ai_models`` and recorded its run and
    changes, so it blocks there, deep inside its transaction, until this session lets go.
    ``rollback()`` on the yielded connection releases the locks early.
    """
    blocker = psycopg.connect(database_url, connect_timeout=5)
    try:
        locked = blocker.execute(
            "SELECT id FROM ai_model_versions WHERE source = %s AND model_id = ANY(%s) "
            "AND valid_to IS NULL FOR UPDATE",
            (SOURCE, model_ids),
        ).fetchall()
        assert locked, "no open version to lock: seed the catalog first"
        yield blocker
    finally:
        blocker.rollback()
        blocker.close()


@dataclass(frozen=True)
class BlockedBackend:
    pid: int
    query: str
    locks: frozenset[tuple[str, str]]  # (relation, mode) held by the backend


def wait_until_blocked(
    db: psycopg.Connection, blocker_pid: int, alive: Callable[[], bool]
) -> BlockedBackend:
    """The backend that waits on ``blocker_pid``'s locks, once it does (bounded)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT pid, query FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
            (blocker_pid,),
        ).fetchone()
        if row is not None:
            pid, query = row
            locks = db.execute(
                "SELECT relation::regclass::text, mode FROM pg_locks "
                "WHERE pid = %s AND granted AND relation IS NOT NULL",
                (pid,),
            ).fetchall()
            return BlockedBackend(pid, query, frozenset(locks))
        assert alive(), "the sync ended before it reached the locked rows"
        time.sleep(0.05)
    raise AssertionError(f"no session blocked on pid {blocker_pid} within {DEADLINE_SECONDS} s")


def wait_until_gone(db: psycopg.Connection, pid: int) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if db.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is None:
            return
        time.sleep(0.05)
    raise AssertionError(f"backend {pid} still exists after {DEADLINE_SECONDS} s")


def assert_wrote_mid_transaction(backend: BlockedBackend) -> None:
    """Blocked closing versions, after it wrote ai_models: a genuinely half-done transaction."""
    assert "UPDATE ai_model_versions" in backend.query, backend.query
    assert ("ai_models", "RowExclusiveLock") in backend.locks, backend.locks
    assert ("ai_model_changes", "RowExclusiveLock") in backend.locks, backend.locks


@dataclass
class SyncThread:
    """``sync_catalog`` on a thread of this process, keeping its result or its exception."""

    engine: Engine
    request: SyncRequest
    result: SyncResult | None = None
    error: BaseException | None = None
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True, name="sync")

    def _run(self) -> None:
        try:
            self.result = sync_catalog(self.engine, self.request, datetime.now(UTC))
        except BaseException as error:  # kept for the test to inspect
            self.error = error

    def start(self) -> SyncThread:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join(DEADLINE_SECONDS)
        assert not self.thread.is_alive(), f"the sync still runs after {DEADLINE_SECONDS} s"


@contextmanager
def blocked_sync(
    engine: Engine, database_url: str, db: psycopg.Connection, name: str, **overrides
) -> Iterator[tuple[SyncThread, BlockedBackend, psycopg.Connection]]:
    """A real sync of ``name`` started on a thread and held mid-transaction until released.

    It holds the source's advisory lock meanwhile, exactly like a long sync would. On exit the
    row locks are released and the thread is joined, whatever happened in between.
    """
    with versions_locked(database_url, price_changed_ids(OLD, NEW)) as blocker:
        thread = SyncThread(engine, sync_request(name, **overrides)).start()
        try:
            backend = wait_until_blocked(db, blocker.info.backend_pid, thread.thread.is_alive)
            yield thread, backend, blocker
        finally:
            blocker.rollback()
            thread.join()


# --- Dagster runs ------------------------------------------------------------------------------


def step_failures(result: ExecuteInProcessResult) -> dict[str, str]:
    """Failed step → the description an operator reads in the Dagster UI (last attempt)."""
    failures = {}
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            failures[event.step_key] = (
                data.user_failure_data.description if data.user_failure_data else data.error.message
            )
    return failures


def retries(result: ExecuteInProcessResult, step: str) -> int:
    return sum(
        1
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_UP_FOR_RETRY and event.step_key == step
    )


def materialized(result: ExecuteInProcessResult, asset: str) -> bool:
    return any(
        e.asset_key == AssetKey([SOURCE, asset]) for e in result.get_asset_materialization_events()
    )


def readme_main_command() -> list[str]:
    """The README's first ``dagster asset materialize`` line, as an argv for this venv."""
    for line in README.read_text().splitlines():
        if line.strip().startswith("dagster asset materialize"):
            command = shlex.split(line.strip())
            executable = shutil.which(command[0], path=str(Path(sys.executable).parent))
            assert executable, "the dagster console script is not installed next to this Python"
            return [executable, *command[1:]]
    raise AssertionError("README.md shows no `dagster asset materialize` command")


def main_command_env(database_url: str, snapshot: str, **settings: str) -> dict[str, str]:
    """This environment without any MODEL_SYNC_/DAGSTER_ variable, plus the run's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_SYNC_", "DAGSTER_"))}
    env["MODEL_SYNC_DATABASE_URL"] = database_url
    env["MODEL_SYNC_GATEWAY_URL"] = snapshot_path(snapshot).as_uri()
    env.update({f"MODEL_SYNC_{key.upper()}": value for key, value in settings.items()})
    return env


@dataclass(frozen=True)
class MainCommand:
    """A run of the README's main command; its output goes to a file, so a full pipe can never
    stall it while the test waits on something else."""

    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> str:
        """End the process (if it still runs) and return its output."""
        if self.running():
            self.process.kill()
        self.process.wait(DEADLINE_SECONDS)
        return self.log.read_text(errors="replace")


def start_main_command(env: dict[str, str], cwd: Path) -> MainCommand:
    log = cwd / f"run-{uuid.uuid4().hex[:8]}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            readme_main_command(), env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )
    return MainCommand(process, log)


# --- Database faults ---------------------------------------------------------------------------


def test_unreachable_server_fails_the_run_with_one_plain_line(run_sync):
    """No server at the URL: the operator reads one line naming the cause, not a stack dump.

    The run is retried twice (the server may be restarting), so this test waits the retry
    policy's 5 s + 15 s (exponential backoff) once; the message is the same on every attempt.
    """
    result = run_sync(str(snapshot_path(OLD)), database_url="postgresql://postgres@127.0.0.1:1/x")

    assert not result.success
    failures = step_failures(result)
    assert list(failures) == [SYNC_STEP], failures
    message = failures[SYNC_STEP]
    assert message.startswith("cannot reach the catalog database: "), message
    assert 'server at "127.0.0.1", port 1 failed' in message, message
    assert "refused" in message.lower(), message
    assert "\n" not in message, message
    for noise in ("[SQL:", "Background on this error", "sqlalche.me", "Traceback"):
        assert noise not in message, message
    assert retries(result, SYNC_STEP) == 2
    assert not materialized(result, "ai_models")


def test_connection_killed_mid_transaction_keeps_the_previous_catalog(
    engine: Engine, database_url: str, db: psycopg.Connection
):
    """pg_terminate_backend of the sync's session after it upserted ai_models, before commit.

    The server rolls the transaction back: every table equals its copy, user settings
    included, and the next sync (on the same pooled engine) writes exactly what a sync of the
    new response onto the previous catalog writes — nothing of the killed one lingers.
    """
    sync(engine, OLD)
    settings = set_user_settings(db)
    before = catalog_state(db)

    with blocked_sync(engine, database_url, db, NEW) as (thread, backend, _blocker):
        assert_wrote_mid_transaction(backend)
        assert db.execute("SELECT pg_terminate_backend(%s)", (backend.pid,)).fetchone() == (True,)
        thread.join()
        wait_until_gone(db, backend.pid)

    assert thread.result is None
    assert isinstance(thread.error, DBAPIError), repr(thread.error)
    message = describe_database_error(thread.error)
    assert message.startswith(
        "lost the connection to the catalog database; nothing was written: "
    ), message
    assert catalog_state(db) == before

    result = sync(engine, NEW)
    assert counts_of(result) == OLD_TO_NEW
    assert_whole_catalog(db, NEW)
    assert user_settings(db, settings) == settings


def test_a_model_inserted_behind_the_syncs_back_fails_its_copy_and_keeps_the_catalog(
    engine: Engine, database_url: str, db: psycopg.Connection
):
    """New models are COPYed straight into ai_models, trusting the keys read under the sync
    lock. A row someone inserts by hand in between makes that COPY hit the unique key: the
    sync must fail like any failed statement (a DBAPIError with one plain line) and leave
    every table as it was, apart from the hand-made row.

    The sync is held between reading the keys and the COPY by a lock on model_sync_runs (it
    records its run there just before writing).
    """
    sync(engine, OLD)
    before = catalog_state(db)
    intruder = sorted(snapshot_ids(NEW) - snapshot_ids(OLD))[0]

    with psycopg.connect(database_url, connect_timeout=5) as locker:
        locker.execute("LOCK TABLE model_sync_runs IN SHARE ROW EXCLUSIVE MODE")
        try:
            thread = SyncThread(engine, sync_request(NEW)).start()
            backend = wait_until_blocked(db, locker.info.backend_pid, thread.thread.is_alive)
            assert "INSERT INTO model_sync_runs" in backend.query, backend.query
            db.execute(
                "INSERT INTO ai_models (source, model_id, raw) VALUES (%s, %s, '{}')",
                (SOURCE, intruder),
            )
            db.commit()
        finally:
            locker.rollback()
    thread.join()

    assert thread.result is None
    assert isinstance(thread.error, DBAPIError), repr(thread.error)
    message = describe_database_error(thread.error)
    assert "duplicate key value violates unique constraint" in message, message
    assert "\n" not in message
    db.execute("DELETE FROM ai_models WHERE model_id = %s", (intruder,))
    db.commit()
    assert catalog_state(db) == before


def test_statement_timeout_cancels_the_sync_and_keeps_the_catalog(
    engine: Engine, database_url: str, db: psycopg.Connection
):
    """A statement that cannot finish within statement_timeout is cancelled, and so is the sync.

    The statement is held by a row lock (lock_timeout far above statement_timeout), so the
    timeout fires deterministically on the sync's write to ai_model_versions, after its upsert.
    """
    sync(engine, OLD)
    set_user_settings(db)
    before = catalog_state(db)

    with versions_locked(database_url, price_changed_ids(OLD, NEW)):
        started = time.monotonic()
        with pytest.raises(DBAPIError) as raised:
            sync(engine, NEW, statement_timeout_seconds=0.3, lock_timeout_seconds=30)
        elapsed = time.monotonic() - started

    message = describe_database_error(raised.value)
    assert message.startswith(
        "a statement ran past MODEL_SYNC_STATEMENT_TIMEOUT_SECONDS and was cancelled; "
        "nothing was written: canceling statement due to statement timeout"
    ), message
    assert 0.3 <= elapsed < 10, elapsed
    assert catalog_state(db) == before


def test_table_lock_makes_the_sync_wait_up_to_the_lock_timeout_then_fail(
    engine: Engine, database_url: str, db: psycopg.Connection
):
    """Another session holds ACCESS EXCLUSIVE on ai_models (a migration, a manual fix ...).

    The sync waits for it no longer than MODEL_SYNC_LOCK_TIMEOUT_SECONDS (here 1 s; a blocked
    nightly sync must not hang forever, nor give up at once), then fails with a plain message,
    having written nothing.
    """
    sync(engine, OLD)
    set_user_settings(db)
    before = catalog_state(db)
    lock_timeout = 1.0

    with psycopg.connect(database_url, connect_timeout=5) as locker:
        locker.execute("LOCK TABLE ai_models IN ACCESS EXCLUSIVE MODE")
        try:
            started = time.monotonic()
            with pytest.raises(DBAPIError) as raised:
                sync(engine, NEW, lock_timeout_seconds=lock_timeout)
            elapsed = time.monotonic() - started
        finally:
            locker.rollback()

    message = describe_database_error(raised.value)
    assert message.startswith(
        "timed out waiting for a lock held by another session "
        "(MODEL_SYNC_LOCK_TIMEOUT_SECONDS); nothing was written: "
    ), message
    assert lock_timeout * 0.95 <= elapsed < lock_timeout + 2.0, elapsed
    assert catalog_state(db) == before


# --- Process faults ----------------------------------------------------------------------------


def test_run_process_killed_mid_write_leaves_nothing_partial(
    database_url: str, db: psycopg.Connection, engine: Engine, run_sync, tmp_path: Path
):
    """SIGKILL of the README's main command while its transaction has written ai_models.

    No COMMIT was ever sent, so the server discards everything once the orphaned session notices
    its client is gone (here: as soon as the row lock it waits on is released). The next run
    then writes what the killed one would have written, from the untouched previous state.
    """
    sync(engine, OLD)
    settings = set_user_settings(db)
    before = catalog_state(db, (*SYNC_TABLES, "webhook_outbox"))
    env = main_command_env(database_url, NEW, lock_timeout_seconds="60")

    with versions_locked(database_url, price_changed_ids(OLD, NEW)) as blocker:
        run = start_main_command(env, tmp_path)
        try:
            backend = wait_until_blocked(db, blocker.info.backend_pid, run.running)
            assert_wrote_mid_transaction(backend)
            os.kill(run.pid, signal.SIGKILL)
            assert run.process.wait(DEADLINE_SECONDS) == -signal.SIGKILL
            # Still uncommitted: nobody sees a thing, even while the orphan waits.
            assert catalog_state(db, (*SYNC_TABLES, "webhook_outbox")) == before
        finally:
            run.stop()
            blocker.rollback()
        wait_until_gone(db, backend.pid)

    assert catalog_state(db, (*SYNC_TABLES, "webhook_outbox")) == before
    assert db.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
    ).fetchone() == (0,)

    result = run_sync(str(snapshot_path(NEW)))
    assert result.success, step_failures(result)
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey([SOURCE, "ai_models"])
    ]
    metadata = {key: value.value for key, value in event.materialization.metadata.items()}
    assert {key: metadata[key] for key in OLD_TO_NEW} == OLD_TO_NEW
    assert_whole_catalog(db, NEW)
    assert user_settings(db, settings) == settings
    assert db.execute(
        "SELECT status, count(*) FROM model_sync_runs GROUP BY status"
    ).fetchall() == [("success", 2)]
