"""Where enabled sources disagree on a model's price (``ai_model_price_comparison``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

_DISAGREEMENTS = """
SELECT c.canonical_model_id, c.price_field, c.spread::text AS spread,
       jsonb_object_agg(c.source, c.price_per_1m::text ORDER BY c.source) AS prices
FROM ai_model_price_comparison c
WHERE c.disagrees
  AND (c.canonical_model_id, c.price_field) IN (
      SELECT canonical_model_id, price_field FROM ai_model_price_comparison WHERE source = :source)
GROUP BY c.canonical_model_id, c.price_field, c.spread
ORDER BY c.canonical_model_id, c.price_field
"""


def price_disagreements(
    connection: Connection, source: str, tolerance: Decimal
) -> list[dict[str, Any]]:
    """Every canonical model and base price field this source prices where the compared
    sources disagree by more than ``tolerance`` (prices as exact decimal strings)."""
    connection.execute(
        text("SELECT set_config('model_sync.price_tolerance', :tolerance, true)"),
        {"tolerance": str(tolerance)},
    )
    return [
        dict(row._mapping) for row in connection.execute(text(_DISAGREEMENTS), {"source": source})
    ]
