"""The Vercel AI Gateway ``GET /v1/models``: its envelope, pydantic shape and catalog mapping.

Like every source's models these allow extra fields (``Served``): what we do not model is still
kept, because the whole raw model and its whole ``pricing`` object are stored as JSONB (and
every price in it is queryable through ``ai_model_prices``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import StrictStr

from model_sync.costing import MeterRule
from model_sync.pricing import cost_bucket, per_million
from model_sync.sources.base import (
    Count,
    ModelId,
    Price,
    RawEntry,
    ResponseError,
    Served,
    Source,
    Timestamp,
    canonical_from_provider_model,
    catalog_row,
    tier_entries,
)

NAME = "vercel"

# Tags that map to the catalog's boolean capability flags.
TAG_FUNCTION_CALLING = "tool-use"
TAG_VISION = "vision"
TAG_REASONING = "reasoning"


class VercelPriceTier(Served):
    """One band of a tiered price; ``max`` is exclusive and absent on the last band."""

    cost: Price
    min: Count = 0
    max: Count | None = None


class VercelPricing(Served):
    """The price kinds we turn into columns; all others stay in the stored ``pricing`` JSON."""

    input: Price | None = None
    output: Price | None = None
    input_cache_read: Price | None = None
    input_cache_write: Price | None = None
    web_search: Price | None = None
    input_tiers: list[VercelPriceTier] | None = None
    output_tiers: list[VercelPriceTier] | None = None
    input_cache_read_tiers: list[VercelPriceTier] | None = None
    input_cache_write_tiers: list[VercelPriceTier] | None = None


class VercelModel(Served):
    """One entry of ``data`` in the gateway's ``{"object": "list", "data": [...]}`` response."""

    id: ModelId
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


def entries(payload: Any) -> list[RawEntry]:
    """Check the ``{"object": "list", "data": [...]}`` envelope; each entry carries its id."""
    if not isinstance(payload, dict):
        raise ResponseError(
            f"expected a JSON object with a model list, got {type(payload).__name__}"
        )
    if payload.get("object") != "list" or not isinstance(payload.get("data"), list):
        raise ResponseError(
            'expected {"object": "list", "data": [...]}, got keys '
            f"{sorted(payload)[:10]} with object={payload.get('object')!r} and data of type "
            f"{type(payload.get('data')).__name__}"
        )
    return [(raw.get("id") if isinstance(raw, dict) else None, raw) for raw in payload["data"]]


def _base_price(flat: Decimal | None, tiers: list[VercelPriceTier] | None) -> Decimal | None:
    """The flat column holds the base tier: the flat key when served, else the first band."""
    if flat is not None:
        return flat
    return tiers[0].cost if tiers else None


def _tiers(tiers: list[VercelPriceTier] | None) -> list[dict[str, Any]] | None:
    if tiers is None:
        return None
    return tier_entries((t.cost, t.min, t.max, t.model_extra or {}) for t in tiers)


def to_row(model: VercelModel, model_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Map one validated gateway model to the normalized catalog columns."""
    pricing = model.pricing or VercelPricing()
    tags = list(model.tags or [])
    capabilities = list(tags)
    if model.type and model.type not in capabilities:
        capabilities.append(model.type)
    provider, slash, _ = model_id.partition("/")
    output_price = _base_price(pricing.output, pricing.output_tiers)
    return catalog_row(
        source=NAME,
        model_id=model_id,
        canonical_model_id=canonical_id(model_id, raw),
        price_role="gateway",
        model_name=model.name,
        # Ids are "provider/model"; an id without a usable provider part falls back to owner.
        provider=provider if slash and provider else model.owned_by,
        owned_by=model.owned_by,
        description=model.description,
        model_type=model.type,
        context_window=model.context_window,
        max_output_tokens=model.max_tokens,
        released_at=model.released,
        gateway_created_at=model.created,
        deprecated_at=model.deprecated_at,
        capabilities=capabilities,
        supports_function_calling=TAG_FUNCTION_CALLING in tags,
        supports_vision=TAG_VISION in tags,
        supports_reasoning=TAG_REASONING in tags,
        cost_per_1m_input=per_million(_base_price(pricing.input, pricing.input_tiers)),
        cost_per_1m_output=per_million(output_price),
        cost_per_1m_cache_read=per_million(
            _base_price(pricing.input_cache_read, pricing.input_cache_read_tiers)
        ),
        cost_per_1m_cache_write=per_million(
            _base_price(pricing.input_cache_write, pricing.input_cache_write_tiers)
        ),
        web_search_cost=pricing.web_search,
        input_tiers=_tiers(pricing.input_tiers),
        output_tiers=_tiers(pricing.output_tiers),
        input_cache_read_tiers=_tiers(pricing.input_cache_read_tiers),
        input_cache_write_tiers=_tiers(pricing.input_cache_write_tiers),
        cost_bucket=cost_bucket(output_price),
        pricing=raw.get("pricing"),
        raw=raw,
    )


def canonical_id(model_id: str, raw: dict[str, Any]) -> str:
    """Gateway ids are already ``provider/model``; only the provider's alias is unified (an id
    without a ``/`` is its own provider and model, as migration 0004 computed it)."""
    provider, slash, name = model_id.partition("/")
    return canonical_from_provider_model(provider, name if slash else model_id)


SOURCE = Source(
    name=NAME,
    title="Vercel AI Gateway",
    default_url="https://ai-gateway.vercel.sh/v1/models",
    # MODEL_SYNC_GATEWAY_URL is the name this project used while Vercel was its only source.
    url_variables=("MODEL_SYNC_VERCEL_URL", "MODEL_SYNC_GATEWAY_URL"),
    entries=entries,
    model=VercelModel,
    to_row=to_row,
    canonical_id=canonical_id,
    essential_fields=frozenset({"id", "pricing"}),
    field_columns={
        "name": ("model_name",),
        "owned_by": ("owned_by", "provider"),
        "description": ("description",),
        "type": ("model_type", "capabilities"),
        "context_window": ("context_window",),
        "max_tokens": ("max_output_tokens",),
        "created": ("gateway_created_at",),
        "released": ("released_at",),
        "deprecated_at": ("deprecated_at",),
        "tags": (
            "capabilities",
            "supports_function_calling",
            "supports_vision",
            "supports_reasoning",
        ),
    },
    column_price_paths=frozenset(
        {
            "input",
            "output",
            "input_cache_read",
            "input_cache_write",
            "web_search",
            "input_tiers",
            "output_tiers",
            "input_cache_read_tiers",
            "input_cache_write_tiers",
        }
    ),
    meter_rules={
        # Vercel's web_search is USD per 1,000 searches (Anthropic's $10 / 1K, as served: "10").
        "web_search_calls": MeterRule(r"^web_search$", unit_exponent=3),
        "images": MeterRule(r"^(image|image_dimension_quality_pricing\[[0-9]+\]\.cost)$"),
        "video_seconds": MeterRule(r"^video_duration_pricing\[[0-9]+\]\.cost_per_second$"),
    },
    pricing_unit="USD per token (web_search per search, image per image, video per second)",
)
