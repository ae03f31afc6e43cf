"""Reading prices for the cost of usage: the version in force at a time, canonical ids, and
the SQL function over a batch (the HTTP API) or a table of usage (re-pricing)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from model_sync.costing import TOKEN_METERS, PriceVersion
from model_sync.sources.base import decode_json

_VERSION_AT = f"""
SELECT id, source, model_id, is_active,
       {", ".join(column for column, _ in TOKEN_METERS.values())},
       {", ".join(f"{tiers}::text" for _, tiers in TOKEN_METERS.values())},
       pricing::text
FROM ai_model_versions
WHERE source = :source AND model_id = :model_id
  AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)
"""


class NoPrice(LookupError):
    """The catalog has no price of that model at that time (or the model was not served)."""


def _exact(json_text: str | None) -> Any:
    # jsonb read as text and decoded with Decimals: numbers stay exact.
    return None if json_text is None else decode_json(json_text.encode())


def version_at(connection: Connection, source: str, model_id: str, at: datetime) -> PriceVersion:
    """The version of a model's prices in force at ``at`` (the Python twin's input)."""
    row = connection.execute(
        text(_VERSION_AT), {"source": source, "model_id": model_id, "at": at}
    ).one_or_none()
    if row is None:
        raise NoPrice(f"no price of {source} model {model_id} at {at.isoformat()}")
    version_id, source, model_id, active, *rest = row
    prices, tiers, pricing = rest[:4], rest[4:8], rest[8]
    return PriceVersion(
        version_id=version_id,
        source=source,
        model_id=model_id,
        is_active=active,
        prices=dict(zip((c for c, _ in TOKEN_METERS.values()), prices, strict=True)),
        tiers={
            tier: _exact(value)
            for tier, value in zip((t for _, t in TOKEN_METERS.values()), tiers, strict=True)
        },
        pricing=_exact(pricing),
    )


def resolve_model(
    connection: Connection, canonical_model_id: str, source: str | None = None
) -> tuple[str, str]:
    """(source, model_id) of a canonical id (your aliases first); ambiguous across sources
    unless ``source`` says which."""
    rows = connection.execute(
        text(
            "SELECT m.source, m.model_id FROM ai_models m "
            "LEFT JOIN model_aliases a ON a.source = m.source AND a.model_id = m.model_id "
            "WHERE coalesce(a.canonical_model_id, m.canonical_model_id) = :canonical "
            "AND (CAST(:source AS text) IS NULL OR m.source = :source) "
            "ORDER BY m.is_active DESC, m.source, m.model_id"
        ),
        {"canonical": canonical_model_id, "source": source},
    ).all()
    sources = sorted({row[0] for row in rows})
    if not rows:
        raise NoPrice(f"no model with canonical id {canonical_model_id}")
    if len(sources) > 1:
        raise NoPrice(
            f"canonical id {canonical_model_id} is priced by {', '.join(sources)}: say which source"
        )
    return rows[0][0], rows[0][1]


def cost_in_sql(
    connection: Connection, source: str, model_id: str, at: datetime, usage: dict[str, Any]
) -> dict[str, Any]:
    """``ai_model_cost_or_error`` of one record: the cost (amounts as exact Decimals), or
    ``{"error": …}``."""
    from model_sync.store.copy_text import json_text

    answer = connection.execute(
        text("SELECT ai_model_cost_or_error(:source, :model_id, :at, CAST(:usage AS jsonb))::text"),
        {"source": source, "model_id": model_id, "at": at, "usage": json_text(usage)},
    ).scalar_one()
    return _exact(answer)
