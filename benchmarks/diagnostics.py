"""Where sync_catalog's time goes in the database: EXPLAIN ANALYZE of its statements.

:func:`explain_sync` replays sync_catalog's statements (its own SQL text, in its order) in one
transaction, each heavy one under ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)``, then rolls
everything back. ``model_sync`` is only read, never changed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, text

import model_sync.store.sync as sync_module
from model_sync.store.sync import SyncRequest

SOURCE = "vercel"

# --------------------------------------------------------------------------------------------
# EXPLAIN ANALYZE of every heavy statement of one sync
# --------------------------------------------------------------------------------------------


@dataclass
class ExplainedStatement:
    label: str
    execution_ms: float
    planning_ms: float
    trigger_ms: float
    triggers: list[str]
    shared_hit: int
    shared_read: int
    shared_written: int
    temp_written: int
    plan: str


def _plan_lines(node: dict[str, Any], depth: int = 0, max_depth: int = 5) -> list[str]:
    relation = node.get("Relation Name") or node.get("CTE Name") or ""
    alias = node.get("Alias")
    target = f" on {relation}" + (f" {alias}" if alias and alias != relation else "")
    details = []
    for key in ("Hash Cond", "Join Filter", "Filter", "Index Cond", "Conflict Resolution"):
        if key in node:
            shown = node[key] if len(str(node[key])) < 70 else str(node[key])[:67] + "..."
            details.append(f"{key}: {shown}")
    line = (
        f"{'  ' * depth}-> {node['Node Type']}{target if relation else ''} "
        f"(actual time={node.get('Actual Total Time', 0):.1f} ms "
        f"rows={node.get('Actual Rows', 0)} loops={node.get('Actual Loops', 0)})"
    )
    if details:
        line += "  [" + "; ".join(details) + "]"
    lines = [line]
    if depth < max_depth:
        for child in node.get("Plans", []):
            lines += _plan_lines(child, depth + 1, max_depth)
    return lines


def _explain(
    connection: Connection, label: str, sql: str, params: dict[str, Any] | None = None
) -> ExplainedStatement:
    result = connection.execute(
        text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"), params or {}
    ).scalar_one()
    document = (json.loads(result) if isinstance(result, str) else result)[0]
    plan = document["Plan"]
    triggers = document.get("Triggers", [])
    return ExplainedStatement(
        label=label,
        execution_ms=document.get("Execution Time", math.nan),
        planning_ms=document.get("Planning Time", math.nan),
        trigger_ms=sum(trigger["Time"] for trigger in triggers),
        triggers=[
            f"{trigger['Trigger Name']} on {trigger.get('Relation', '?')}: "
            f"{trigger['Time']:.0f} ms, {trigger['Calls']} calls"
            for trigger in triggers
        ],
        shared_hit=plan.get("Shared Hit Blocks", 0),
        shared_read=plan.get("Shared Read Blocks", 0),
        shared_written=plan.get("Shared Written Blocks", 0),
        temp_written=plan.get("Temp Written Blocks", 0),
        plan="\n".join(_plan_lines(plan)),
    )


@dataclass
class ExplainedSync:
    scenario: str
    stage_seconds: float
    statements: list[ExplainedStatement]


def explain_sync(engine: Engine, frame: pd.DataFrame, scenario: str) -> ExplainedSync:
    """Replay sync_catalog's statements (same SQL text, same order) and roll back.

    It reads sync_catalog's private statements and helpers by name, at call time: if they are
    renamed this raises AttributeError and the runner reports the EXPLAIN as skipped.
    """
    internals = sync_module
    _stage, _start_run = internals._stage, internals._start_run
    request = SyncRequest(frame=frame, source=SOURCE, run_id=f"bench-explain-{scenario}")
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            as_of = connection.execute(text("SELECT now()")).scalar_one()
            started = time.perf_counter()
            known = frame["model_id"].isin(internals._known_models(connection, SOURCE))
            _stage(connection, frame[known])
            stage_seconds = time.perf_counter() - started
            statements = [
                _explain(
                    connection, "diff (catalog_diff)", internals._DIFF_SQL, {"source": SOURCE}
                ),
                _explain(connection, "field diff", internals._FIELD_DIFF_SQL),
            ]
            sync_id = _start_run(connection, request, datetime.now(UTC))
            params = {"sync_id": sync_id, "run_id": request.run_id, "as_of": as_of}
            started = time.perf_counter()
            internals._insert_new_models(connection, frame[~known], SOURCE, as_of, request.run_id)
            stage_seconds += time.perf_counter() - started
            for label, sql in (
                ("change report insert", internals._RECORD_CHANGES_SQL),
                ("update changed models", internals._UPDATE_SQL),
                ("deactivate", internals._DEACTIVATE_SQL),
                ("history: version diff", internals._VERSION_DIFF_SQL),
                ("history: close versions", internals._CLOSE_VERSIONS_SQL),
                ("history: open versions", internals._OPEN_VERSIONS_SQL),
            ):
                used = {key: value for key, value in params.items() if f":{key}" in sql}
                statements.append(_explain(connection, label, sql, used))
        finally:
            transaction.rollback()
    return ExplainedSync(scenario, stage_seconds, statements)
