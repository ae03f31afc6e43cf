"""The measured operations and their plumbing: the bench database, our sync, the per-model
baseline, the COPY floor, the write checks and the per-statement profiler.

The baseline and the floor live here, not in ``model_sync``: they exist only to be compared.
"""

from __future__ import annotations

import io
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import psycopg
from sqlalchemy import Engine, bindparam, event, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB

from model_sync.store.database import dispose_engines, engine_for, sqlalchemy_url
from model_sync.store.migrate import upgrade
from model_sync.store.sync import (
    CONTENT_COLUMNS,
    JSON_COLUMNS,
    SyncRequest,
    SyncResult,
    sync_catalog,
)
from model_sync.store.tables import ai_models
from model_sync.transform import FRAME_COLUMNS

SOURCE = "vercel"
CATALOG_TABLES = (
    "ai_models",
    "ai_model_versions",
    "ai_model_changes",
    "webhook_outbox",
    "model_sync_runs",
)
FLOOR_TABLE = "bench_copy_floor"
DURABLE_TABLE = "bench_copy_durable"
COPY_CHUNK = 1 << 20


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------------------------
# The bench database
# --------------------------------------------------------------------------------------------


@dataclass
class BenchDatabase:
    """A database of our own on the shared server, created migrated and dropped at the end."""

    admin_url: str
    name: str

    @property
    def url(self) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        user = info.get("user", "postgres")
        host = info.get("host", "127.0.0.1")
        port = info.get("port", "5432")
        return f"postgresql://{user}@{host}:{port}/{self.name}"

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)

    def create(self) -> Engine:
        self.drop()
        with self._admin() as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        engine = self.engine()
        upgrade(engine)
        return engine

    def engine(self) -> Engine:
        # The same pooled engine the code location uses (engine_for), on our database.
        return engine_for(sqlalchemy_url(self.url))

    def drop(self) -> None:
        dispose_engines()
        with self._admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def reset_schema(self) -> None:
        """Back to an empty, unmigrated database (for the end-to-end first-run case)."""
        dispose_engines()
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute("DROP SCHEMA public CASCADE")
            connection.execute("CREATE SCHEMA public")


def reset_catalog(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(CATALOG_TABLES)} RESTART IDENTITY CASCADE"))


# Server settings that move benchmark numbers; reported with every run.
SERVER_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "max_wal_size",
    "autovacuum",
    "jit",
)


def server_facts(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        facts = {"version": connection.execute(text("SELECT version()")).scalar_one()}
        for setting in ("server_version", *SERVER_SETTINGS):
            facts[setting] = connection.execute(text(f"SHOW {setting}")).scalar_one()
    return facts


# --------------------------------------------------------------------------------------------
# Our sync, with a per-statement profile
# --------------------------------------------------------------------------------------------

# Statement prefix → phase of sync_catalog. Matched in order, on whitespace-collapsed SQL.
PHASES: tuple[tuple[str, str], ...] = (
    ("SELECT ai_models.model_id FROM ai_models", "read stored keys"),
    ("CREATE TEMPORARY TABLE ai_models_staged", "stage: create temp table"),
    ("ALTER TABLE ai_models_staged", "stage: primary key"),
    ("ANALYZE ai_models_staged", "stage: ANALYZE"),
    ("CREATE TEMPORARY TABLE catalog_diff", "diff (catalog_diff)"),
    ("CREATE TEMPORARY TABLE field_diff", "field diff"),
    ("INSERT INTO model_sync_runs", "run row"),
    ("INSERT INTO catalog_diff", "new models: list as created"),
    ("INSERT INTO ai_model_changes", "change report insert"),
    ("UPDATE ai_models t SET is_active = false", "deactivate"),
    ("UPDATE ai_models t SET", "update changed models"),
    ("CREATE TEMPORARY TABLE version_diff", "history: version diff"),
    ("UPDATE ai_model_versions", "history: close versions"),
    ("INSERT INTO ai_model_versions", "history: open versions"),
)
STAGE_COPY = "stage: COPY of stored models (Python encode + send)"
NEW_COPY = "new models: COPY into ai_models (Python encode + send)"
PHASE_ORDER = (
    "read stored keys",
    STAGE_COPY,
    "stage: create temp table",
    "stage: primary key",
    "stage: ANALYZE",
    "diff (catalog_diff)",
    "field diff",
    NEW_COPY,
    "new models: list as created",
    "change report insert",
    "update changed models",
    "deactivate",
    "history: version diff",
    "history: close versions",
    "history: open versions",
    "other SQL (lock, guards, run row, counts)",
    "commit",
    "Python outside statements",
)


def _phase(statement: str) -> str:
    collapsed = " ".join(statement.split())
    for prefix, phase in PHASES:
        if collapsed.startswith(prefix):
            return phase
    return "other SQL (lock, guards, run row, counts)"


class StatementProfiler:
    """Times every statement sync_catalog sends through SQLAlchemy. The two COPYs bypass
    SQLAlchemy, so each is timed as the gap between the statements around it: the staging
    COPY between creating the staging table and adding its key, the COPY of new models
    between the run row and listing those models as created."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.events: list[tuple[str, float, float]] = []
        self.pids: set[int] = set()
        self._active = False
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "checkout", self._checkout)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        event.remove(self.engine, "checkout", self._checkout)

    def _checkout(self, dbapi_connection, connection_record, connection_proxy) -> None:
        if self._active:
            self.pids.add(dbapi_connection.info.backend_pid)

    def _before(self, connection, cursor, statement, parameters, context, executemany) -> None:
        if self._active:
            connection.info["bench_started"] = time.perf_counter()

    def _after(self, connection, cursor, statement, parameters, context, executemany) -> None:
        if self._active:
            started = connection.info.pop("bench_started")
            self.events.append((_phase(statement), started, time.perf_counter()))

    @contextmanager
    def recording(self) -> Iterator[None]:
        self.events, self.pids, self._active = [], set(), True
        try:
            yield
        finally:
            self._active = False

    def _gap(self, before: str, after: str) -> float:
        ends = [end for phase, _, end in self.events if phase == before]
        starts = [start for phase, start, _ in self.events if phase == after]
        return starts[0] - ends[0] if ends and starts else 0.0

    def breakdown(self, started: float, finished: float) -> dict[str, float]:
        phases = dict.fromkeys(PHASE_ORDER, 0.0)
        for phase, start, end in self.events:
            phases[
                "other SQL (lock, guards, run row, counts)" if phase == "run row" else phase
            ] += end - start
        # If sync_catalog stops working this way, the COPYs simply show up as Python time.
        phases[STAGE_COPY] = self._gap("stage: create temp table", "stage: primary key")
        phases[NEW_COPY] = self._gap("run row", "new models: list as created")
        phases["commit"] = finished - max(end for _, _, end in self.events)
        phases["Python outside statements"] = (finished - started) - sum(phases.values())
        return phases


@dataclass
class SyncTiming:
    seconds: float
    result: SyncResult
    phases: dict[str, float]
    pids: set[int] = field(default_factory=set)


def run_sync(engine: Engine, frame: pd.DataFrame, profiler: StatementProfiler) -> SyncTiming:
    request = SyncRequest(frame=frame, source=SOURCE, run_id=f"bench-{uuid.uuid4()}")
    with profiler.recording():
        started = time.perf_counter()
        result = sync_catalog(engine, request, datetime.now(UTC))
        finished = time.perf_counter()
    return SyncTiming(
        finished - started, result, profiler.breakdown(started, finished), set(profiler.pids)
    )


# --------------------------------------------------------------------------------------------
# Did a sync write rows? xmin of every row, and the cumulative statistics
# --------------------------------------------------------------------------------------------


def row_versions(engine: Engine) -> dict[int, str]:
    """id → xmin of every ai_models row. A rewritten row (UPDATE, even to equal values) gets a
    new xmin; an untouched row keeps its own."""
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT id, xmin::text FROM ai_models")).all())


def rewritten_rows(before: dict[int, str], after: dict[int, str]) -> int:
    """Rows inserted or rewritten between two snapshots (deleted rows are not counted)."""
    return sum(1 for key, xmin in after.items() if before.get(key) != xmin)


def table_write_stats(engine: Engine, sync_pids: set[int]) -> tuple[dict[str, int], bool]:
    """n_tup_ins + n_tup_upd + n_tup_del of ai_models after forcing a flush of the backend's
    pending statistics; the bool says whether that backend was the sync's own."""
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        connection.execute(text("SELECT pg_stat_force_next_flush()"))
        connection.commit()  # the backend flushes before it reports ready for the next query
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = connection.execute(
            text(
                "SELECT n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd "
                "FROM pg_stat_user_tables WHERE relname = 'ai_models'"
            )
        ).one()
    stats = dict(zip(("ins", "upd", "del", "hot_upd"), row, strict=True))
    return stats, sync_pids == {pid}


# --------------------------------------------------------------------------------------------
# The old way: per model SELECT, then INSERT or UPDATE, in one transaction
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _bind(column: str):
    # JSONB(none_as_null): a missing tier list is SQL NULL, as sync_catalog stores it (plain
    # JSONB would store the JSON value 'null').
    type_ = JSONB(none_as_null=True) if column in JSON_COLUMNS else ai_models.c[column].type
    return bindparam(column, type_=type_)


def baseline_sync(engine: Engine, frame: pd.DataFrame, run_id: str) -> dict[str, int]:
    """What a row-at-a-time loader does: for each model one SELECT by key, then one INSERT or
    one UPDATE of the same columns; afterwards one UPDATE deactivates the models that are
    gone. No change report, no history, no guards: strictly less work than sync_catalog."""
    find = select(ai_models.c.id).where(
        ai_models.c.source == bindparam("key_source"),
        ai_models.c.model_id == bindparam("key_model_id"),
    )
    add = insert(ai_models).values(
        {column: _bind(column) for column in FRAME_COLUMNS}
        | {
            "is_active": True,
            "first_seen_at": bindparam("now_"),
            "updated_at": bindparam("now_"),
            "last_changed_run_id": bindparam("run_id_"),
        }
    )
    change = (
        update(ai_models)
        .where(ai_models.c.id == bindparam("key_id"))
        .values(
            {column: _bind(column) for column in CONTENT_COLUMNS}
            | {
                "is_active": True,
                "deactivated_at": None,
                "updated_at": bindparam("now_"),
                "last_changed_run_id": bindparam("run_id_"),
            }
        )
    )
    counts = {"inserted": 0, "updated": 0, "deactivated": 0}
    now = datetime.now(UTC)
    with engine.begin() as connection:
        seen = []
        for record in frame.itertuples(index=False, name=None):
            row = {
                column: _plain(value) for column, value in zip(FRAME_COLUMNS, record, strict=True)
            }
            seen.append(row["model_id"])
            existing = connection.execute(
                find, {"key_source": row["source"], "key_model_id": row["model_id"]}
            ).scalar()
            if existing is None:
                connection.execute(add, row | {"now_": now, "run_id_": run_id})
                counts["inserted"] += 1
            else:
                connection.execute(
                    change,
                    {column: row[column] for column in CONTENT_COLUMNS}
                    | {"key_id": existing, "now_": now, "run_id_": run_id},
                )
                counts["updated"] += 1
        counts["deactivated"] = connection.execute(
            text(
                "UPDATE ai_models SET is_active = false, deactivated_at = :now "
                "WHERE source = :source AND is_active AND NOT (model_id = ANY(:ids))"
            ),
            {"now": now, "source": SOURCE, "ids": seen},
        ).rowcount
    return counts


# --------------------------------------------------------------------------------------------
# The floor: COPY of the same rows into an empty UNLOGGED table with the same columns
# --------------------------------------------------------------------------------------------


@dataclass
class Floor:
    """The server-side minimum for writing these rows: their COPY text is taken once, before
    timing, from the catalog the sync just loaded (``COPY (SELECT <frame columns> FROM
    ai_models) TO STDOUT``: exactly the values the sync stores), so only transfer, parsing
    (jsonb included), storage and commit are measured."""

    engine: Engine
    payload: bytes = b""

    @property
    def columns(self) -> str:
        return ", ".join(FRAME_COLUMNS)

    def _connection(self) -> psycopg.Connection:
        return psycopg.connect(self.engine.url.set(drivername="postgresql").render_as_string(False))

    def prepare(self) -> None:
        """Capture the COPY text of the loaded catalog; create the target tables."""
        with self._connection() as connection:
            buffer = io.BytesIO()
            query = f"COPY (SELECT {self.columns} FROM ai_models ORDER BY id) TO STDOUT"
            with connection.cursor().copy(query) as copy:
                for chunk in copy:
                    buffer.write(chunk)
            self.payload = buffer.getvalue()
            connection.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}, {DURABLE_TABLE}")
            connection.execute(
                f"CREATE UNLOGGED TABLE {FLOOR_TABLE} AS "
                f"SELECT {self.columns} FROM ai_models WITH NO DATA"
            )
            # Informational: a WAL-logged table with ai_models' defaults, identity and indexes.
            connection.execute(f"CREATE TABLE {DURABLE_TABLE} (LIKE ai_models INCLUDING ALL)")
            connection.commit()

    def _copy(self, connection: psycopg.Connection, table: str) -> None:
        view = memoryview(self.payload)
        with connection.cursor().copy(f"COPY {table} ({self.columns}) FROM STDIN") as copy:
            for offset in range(0, len(view), COPY_CHUNK):
                copy.write(view[offset : offset + COPY_CHUNK])

    def _timed(self, table: str) -> float:
        with self._connection() as connection:
            connection.execute(f"TRUNCATE {table}")
            connection.commit()
            started = time.perf_counter()
            self._copy(connection, table)
            connection.commit()
            return time.perf_counter() - started

    def copy_bytes(self) -> float:
        """The floor: the COPY text in 1 MiB chunks into the empty UNLOGGED table, commit."""
        return self._timed(FLOOR_TABLE)

    def copy_bytes_durable(self) -> float:
        """The same COPY into a logged table with ai_models' indexes (informational)."""
        return self._timed(DURABLE_TABLE)

    def copy_bytes_temp(self) -> float:
        """The same COPY into a temporary table like the sync's staging table: the server's
        share of the staging step (the rest of it is the client building the rows)."""
        with self._connection() as connection:
            connection.execute(
                "CREATE TEMPORARY TABLE bench_copy_temp ON COMMIT DROP AS "
                f"SELECT {self.columns} FROM ai_models WITH NO DATA"
            )
            started = time.perf_counter()
            self._copy(connection, "bench_copy_temp")
            elapsed = time.perf_counter() - started
            connection.commit()
            return elapsed

    def drop(self) -> None:
        with self._connection() as connection:
            connection.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}, {DURABLE_TABLE}")
            connection.commit()
