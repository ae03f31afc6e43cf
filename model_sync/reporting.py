"""What a sync tells people: run-log lines and materialization metadata. Pure formatting.

Each Dagster log call is an event stored in the run's event log (~10 ms each): one per model
would make a first load of 100,000 models take hours and flood the UI, so lists are capped
and each kind of change is one message.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from dagster import MetadataValue

from model_sync.drift import SchemaDrift
from model_sync.store.tables import ChangeType
from model_sync.transform import NormalizedModels

# Lists in metadata are capped: a first sync creates hundreds of models.
METADATA_LIST_CAP = 50
MODEL_LOG_LINES_CAP = 1_000

# The materialization's numeric metadata per change type (plotted by the UI over time).
CHANGE_METADATA_KEYS = {
    ChangeType.CREATED: "created_models",
    ChangeType.DEACTIVATED: "deactivated_models",
    ChangeType.REACTIVATED: "reactivated_models",
    ChangeType.PRICE_CHANGED: "price_changes",
    ChangeType.TIERS_CHANGED: "tier_changes",
    ChangeType.CAPABILITIES_CHANGED: "capability_changes",
    ChangeType.LIMITS_CHANGED: "limit_changes",
    ChangeType.DEPRECATED: "deprecations",
    ChangeType.STALE: "stale_changes",
    ChangeType.RECOVERED: "recovered_models",
}
assert set(CHANGE_METADATA_KEYS) == set(ChangeType), "every change type has its metadata key"


def capped_markdown(title: str, lines: list[str]) -> str:
    shown = [f"- `{line}`" for line in lines[:METADATA_LIST_CAP]]
    if len(lines) > METADATA_LIST_CAP:
        shown.append(f"- … and {len(lines) - METADATA_LIST_CAP} more")
    return f"**{title}** ({len(lines)})\n\n" + ("\n".join(shown) if shown else "none")


def model_lines(verb: str, model_ids: list[str], sync_id: int) -> str:
    """``<Verb> model: <id>`` lines for one debug event, capped with a pointer to the table."""
    lines = [f"{verb} model: {model_id}" for model_id in model_ids[:MODEL_LOG_LINES_CAP]]
    if len(model_ids) > MODEL_LOG_LINES_CAP:
        lines.append(
            f"… and {len(model_ids) - MODEL_LOG_LINES_CAP} more "
            f"(SELECT * FROM ai_model_changes WHERE sync_id = {sync_id})"
        )
    return "\n".join(lines)


def table_markdown(
    rows: list[dict[str, Any]], columns: list[str], cap: int = METADATA_LIST_CAP
) -> str:
    if not rows:
        return "none"
    frame = pd.DataFrame(rows[:cap], columns=columns)
    text = frame.to_markdown(index=False)
    if len(rows) > cap:
        text += f"\n\n… and {len(rows) - cap} more"
    return text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "…"


def changes_markdown(
    change_counts: dict[str, int], preview: list[dict[str, Any]], sync_id: int
) -> str:
    """The run's change report as a table, capped; the rest is in ai_model_changes."""
    total = sum(change_counts.values())
    if not total:
        return "No changes."
    lines = ["| model | change | field | old | new | relative |", "|---|---|---|---|---|---|"]
    for change in preview[:METADATA_LIST_CAP]:
        cells = [
            change["model_id"],
            change["change_type"],
            change["field"] or "",
            _cell(change["old_value"]),
            _cell(change["new_value"]),
            "" if change["relative_change"] is None else f"{change['relative_change']:+.2%}",
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    shown = min(total, METADATA_LIST_CAP, len(preview))
    if total > shown:
        lines.append(
            f"\n… and {total - shown} more "
            f"(SELECT * FROM ai_model_changes WHERE sync_id = {sync_id})"
        )
    return "\n".join(lines)


def drift_metadata(drift: SchemaDrift | None) -> dict[str, Any]:
    drift = drift or SchemaDrift()
    return {
        "schema_drift_paths": drift.count,
        "schema_drift": MetadataValue.md(
            table_markdown(drift.rows(), ["path", "change", "old", "new"])
        ),
    }


def frame_metadata(models: NormalizedModels) -> dict[str, Any]:
    frame = models.frame
    problems = [m.as_record() for m in [*models.broken, *models.skipped]]
    stale_rows = (
        frame.loc[frame["stale_reason"].notna(), ["model_id", "stale_reason"]].to_dict("records")
        if len(frame)
        else []
    )
    return {
        "served": models.served,
        "valid": len(frame),
        # Not in the frame: broken (kept stale when the catalog holds them) or skipped.
        "failed": len(models.broken) + len(models.skipped),
        "broken": len(models.broken),
        "partially_read": len(stale_rows),
        "skipped_models": MetadataValue.md(
            table_markdown(
                sorted(problems, key=lambda r: r["index"]), ["index", "model_id", "reason"]
            )
        ),
        "partially_read_models": MetadataValue.md(
            table_markdown(stale_rows, ["model_id", "stale_reason"])
        ),
        "cost_buckets": MetadataValue.json(
            frame["cost_bucket"].fillna("none").value_counts().to_dict() if len(frame) else {}
        ),
        "dagster/row_count": len(frame),
    }
