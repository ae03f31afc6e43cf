"""The Vercel AI Gateway ``/v1/models`` payload: its pydantic shape and its mapping to catalog rows.

This is the only module that knows Vercel's field names. Every model class allows extra
fields: the gateway adds keys (``released``, ``tags``, new price kinds) faster than we model
them, and an unknown key must never make a model fail. What we do not model is still kept,
because the whole raw model and its whole ``pricing`` object are stored as JSONB.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, StrictStr

from model_sync.pricing import cost_bucket, parse_price, per_million

SOURCE = "vercel"

# Tags that map to the catalog's boolean capability flags.
TAG_FUNCTION_CALLING = "tool-use"
TAG_VISION = "vision"
TAG_REASONING = "reasoning"

_MAX_BIGINT = 2**63 - 1
# Postgres btree entries are capped at ~2.7 kB; the catalog's unique key must always fit.
MAX_ID_BYTES = 1000
# 9999-12-31T23:59:59Z: the last second a timestamptz and a Python datetime can both hold.
_MAX_UNIX_SECONDS = 253_402_300_799


def _count(value: Any) -> int:
    """A token count: a non-negative integer (``128000.0`` is accepted, ``True`` is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a non-negative integer, got {type(value).__name__}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    count = int(value)
    if not 0 <= count <= _MAX_BIGINT:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return count


def _unix_seconds(value: Any) -> datetime:
    """Unix seconds (int or float) → aware UTC datetime; ISO-8601 strings are accepted too."""
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            # Normalized to UTC here, so a time that only exists in its own zone (year 0 or
            # 10000 once shifted) is refused now rather than by the database.
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValueError(f"expected unix seconds or an ISO-8601 time, got {shown!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected unix seconds, got {type(value).__name__}")
    # Compare before any float conversion: 10**400 has no float.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"unix seconds out of range: {value!r}")
    if not 0 <= value <= _MAX_UNIX_SECONDS:
        raise ValueError("unix seconds out of range")
    return datetime.fromtimestamp(value, tz=UTC)


def _model_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string id, got {type(value).__name__}")
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_ID_BYTES:
        raise ValueError(f"id longer than {MAX_ID_BYTES} bytes")
    return value


Price = Annotated[Decimal, PlainValidator(parse_price)]
Count = Annotated[int, PlainValidator(_count)]
Timestamp = Annotated[datetime, PlainValidator(_unix_seconds)]


class VercelPriceTier(BaseModel):
    """One band of a tiered price; ``max`` is exclusive and absent on the last band."""

    model_config = ConfigDict(extra="allow")

    cost: Price
    min: Count = 0
    max: Count | None = None


class VercelPricing(BaseModel):
    """The price kinds we turn into columns; all others stay in the stored ``pricing`` JSON."""

    model_config = ConfigDict(extra="allow")

    input: Price | None = None
    output: Price | None = None
    input_cache_read: Price | None = None
    input_cache_write: Price | None = None
    web_search: Price | None = None
    input_tiers: list[VercelPriceTier] | None = None
    output_tiers: list[VercelPriceTier] | None = None
    input_cache_read_tiers: list[VercelPriceTier] | None = None
    input_cache_write_tiers: list[VercelPriceTier] | None = None


class VercelModel(BaseModel):
    """One entry of ``data`` in the gateway's ``{"object": "list", "data": [...]}`` response."""

    model_config = ConfigDict(extra="allow")

    id: Annotated[StrictStr, PlainValidator(_model_id)]
    name: StrictStr | None = None
    owned_by: StrictStr | None = None
    description: StrictStr | None = None
    type: StrictStr | None = None
    context_window: Count | None = None
    max_tokens: Count | None = None
    created: Timestamp | None = None
    released: Timestamp | None = None
    deprecated_at: Timestamp | None = None
    tags: list[StrictStr] | None = None
    pricing: VercelPricing | None = None


def _tiers_json(tiers: list[VercelPriceTier] | None) -> list[dict[str, Any]] | None:
    """Tiers as stored: in the served order, ``min`` filled in, cost as an exact decimal string."""
    if tiers is None:
        return None
    stored = []
    for tier in tiers:
        entry: dict[str, Any] = dict(tier.model_extra or {})
        entry["cost"] = format(tier.cost, "f")
        entry["min"] = tier.min
        if tier.max is not None:
            entry["max"] = tier.max
        stored.append(entry)
    return stored


def _base_price(flat: Decimal | None, tiers: list[VercelPriceTier] | None) -> Decimal | None:
    """The flat column holds the base tier: the flat key when served, else the first band."""
    if flat is not None:
        return flat
    return tiers[0].cost if tiers else None


def catalog_row(model: VercelModel, raw: dict[str, Any]) -> dict[str, Any]:
    """Map one validated gateway model to the normalized catalog columns."""
    pricing = model.pricing or VercelPricing()
    tags = list(model.tags or [])
    capabilities = list(tags)
    if model.type and model.type not in capabilities:
        capabilities.append(model.type)
    provider, slash, _ = model.id.partition("/")
    output_price = _base_price(pricing.output, pricing.output_tiers)
    return {
        "source": SOURCE,
        "model_id": model.id,
        "model_name": model.name,
        # Ids are "provider/model"; an id without a usable provider part falls back to owner.
        "provider": provider if slash and provider else model.owned_by,
        "owned_by": model.owned_by,
        "description": model.description,
        "model_type": model.type,
        "context_window": model.context_window,
        "max_output_tokens": model.max_tokens,
        "released_at": model.released,
        "gateway_created_at": model.created,
        "deprecated_at": model.deprecated_at,
        "capabilities": capabilities,
        "supports_function_calling": TAG_FUNCTION_CALLING in tags,
        "supports_vision": TAG_VISION in tags,
        "supports_reasoning": TAG_REASONING in tags,
        "cost_per_1m_input": per_million(_base_price(pricing.input, pricing.input_tiers)),
        "cost_per_1m_output": per_million(output_price),
        "cost_per_1m_cache_read": per_million(
            _base_price(pricing.input_cache_read, pricing.input_cache_read_tiers)
        ),
        "cost_per_1m_cache_write": per_million(
            _base_price(pricing.input_cache_write, pricing.input_cache_write_tiers)
        ),
        "web_search_cost": pricing.web_search,
        "input_tiers": _tiers_json(pricing.input_tiers),
        "output_tiers": _tiers_json(pricing.output_tiers),
        "input_cache_read_tiers": _tiers_json(pricing.input_cache_read_tiers),
        "input_cache_write_tiers": _tiers_json(pricing.input_cache_write_tiers),
        "cost_bucket": cost_bucket(output_price),
        "pricing": raw.get("pricing"),
        "raw": raw,
    }
