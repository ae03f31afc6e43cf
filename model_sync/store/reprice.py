"""Re-pricing a usage log: each record's cost at the time it ran and at another time.

The records go to Postgres in one COPY and come back in one: the costs are
``ai_model_cost_or_error`` of each, so a log of millions of rows is priced by the database in
one statement, and a record that cannot be priced says why in its own ``error`` column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import IO, Any

from sqlalchemy import Engine, text

from model_sync.costing import METERS, Usage
from model_sync.sources.base import unstorable_value
from model_sync.store.copy_text import escape

REQUIRED = ("source", "model_id", "ran_at")
OUTPUT = (
    "source",
    "model_id",
    "ran_at",
    "usage",
    "cost_then",
    "version_then",
    "cost_at",
    "version_at",
    "difference",
    "unpriced_then",
    "unpriced_at",
    "error",
)

_CREATE = """
CREATE TEMPORARY TABLE usage_in (position bigint, source text, model_id text,
                                 ran_at timestamptz, usage jsonb) ON COMMIT DROP
"""
_PRICED = """
COPY (
    SELECT u.source, u.model_id, u.ran_at, u.usage,
           t.cost->>'total', t.cost->>'version_id',
           n.cost->>'total', n.cost->>'version_id',
           trim_scale((n.cost->>'total')::numeric - (t.cost->>'total')::numeric),
           t.cost->'unpriced', n.cost->'unpriced',
           coalesce(t.cost->>'error', n.cost->>'error')
    FROM usage_in u
    CROSS JOIN LATERAL ai_model_cost_or_error(u.source, u.model_id, u.ran_at, u.usage) AS t(cost)
    CROSS JOIN LATERAL ai_model_cost_or_error(
        u.source, u.model_id, current_setting('model_sync.reprice_at')::timestamptz, u.usage
    ) AS n(cost)
    ORDER BY u.position
) TO STDOUT WITH (FORMAT csv)
"""


def parse_time(text: str) -> datetime:
    """An ISO-8601 time with its time zone (``Z`` or an offset), as a usage record or ``--at``
    gives it. Nothing else: Postgres would also read ``yesterday``, ``epoch`` or a time with
    no zone (in the session's zone), and a bill must not depend on such a guess."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time") from None
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (e.g. 2026-12-01T00:00:00Z)")
    return value


def usage_of(row: Mapping[str, str]) -> dict[str, Any]:
    """The usage object of one CSV row: its meter columns (blank = 0) and ``qualifiers``."""
    usage: dict[str, Any] = {
        meter: row[meter] for meter in METERS if (row.get(meter) or "").strip()
    }
    if (row.get("qualifiers") or "").strip():
        usage["qualifiers"] = json.loads(row["qualifiers"])
    Usage.parse(usage)  # a bad record stops the file with its line number (see reprice_csv)
    return usage


def reprice_csv(
    engine: Engine, rows: Iterable[Mapping[str, str]], at: datetime, out: IO[str]
) -> int:
    """Write each record's cost then and at ``at`` as CSV to ``out``; returns the count."""
    lines = []
    for position, row in enumerate(rows, start=1):
        missing = [column for column in REQUIRED if not (row.get(column) or "").strip()]
        if missing:
            raise ValueError(f"line {position + 1}: missing {', '.join(missing)}")
        try:
            try:
                ran_at = parse_time(row["ran_at"]).isoformat()
            except ValueError as error:
                raise ValueError(f"ran_at: {error}") from None
            usage = usage_of(row)
            # Text Postgres cannot hold (NUL, a lone surrogate) would abort the COPY.
            for name, value in (
                ("source", row["source"]),
                ("model_id", row["model_id"]),
                ("usage", usage),
            ):
                problem = unstorable_value(value)
                if problem:
                    raise ValueError(f"{name}: {problem}")
        except ValueError as error:
            raise ValueError(f"line {position + 1}: {error}") from None
        fields = [str(position), row["source"], row["model_id"], ran_at, json.dumps(usage)]
        lines.append("\t".join(escape(field) for field in fields) + "\n")
    writer = csv.writer(out)
    writer.writerow(OUTPUT)
    with engine.begin() as connection:
        connection.execute(text(_CREATE))
        connection.execute(
            text("SELECT set_config('model_sync.reprice_at', :at, true)"), {"at": at.isoformat()}
        )
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy("COPY usage_in FROM STDIN") as copy:
            for line in lines:
                copy.write(line.encode())
        with cursor.copy(_PRICED) as copy:
            for chunk in copy:
                out.write(bytes(chunk).decode())
    return len(lines)
