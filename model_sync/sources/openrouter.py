"""OpenRouter ``GET /api/v1/models``: a gateway listing 300+ models with per-token prices.

Prices are decimal strings per token. ``"-1"`` marks a router whose price varies with the
model it routes to: that is no price (NULL), never a negative one. ``pricing.overrides``
entries with ``min_prompt_tokens`` are long-context bands (a prompt of at least that many
tokens is priced by the band, OpenRouter's documented rule); they become the tier lists.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import PlainValidator, StrictStr

from model_sync.costing import MeterRule
from model_sync.pricing import cost_bucket, parse_price, per_million
from model_sync.sources.base import (
    Count,
    ModelId,
    RawEntry,
    ResponseError,
    Served,
    Source,
    Timestamp,
    banded_tiers,
    canonical_from_provider_model,
    catalog_row,
)

NAME = "openrouter"
VARIES = "-1"


def _price_or_varies(value: Any) -> Decimal | None:
    """A price, or None for OpenRouter's "the price varies" marker (-1)."""
    if value in (VARIES, -1) and not isinstance(value, bool):
        return None
    return parse_price(value)


MaybePrice = Annotated[Decimal | None, PlainValidator(_price_or_varies)]


class OpenRouterOverride(Served):
    min_prompt_tokens: Count | None = None
    prompt: MaybePrice = None
    completion: MaybePrice = None
    input_cache_read: MaybePrice = None
    input_cache_write: MaybePrice = None


class OpenRouterPricing(Served):
    prompt: MaybePrice = None
    completion: MaybePrice = None
    input_cache_read: MaybePrice = None
    input_cache_write: MaybePrice = None
    web_search: MaybePrice = None
    overrides: list[OpenRouterOverride] | None = None


class Architecture(Served):
    input_modalities: list[StrictStr] | None = None
    output_modalities: list[StrictStr] | None = None


class TopProvider(Served):
    context_length: Count | None = None
    max_completion_tokens: Count | None = None


class OpenRouterModel(Served):
    id: ModelId
    name: StrictStr | None = None
    description: StrictStr | None = None
    created: Timestamp | None = None
    context_length: Count | None = None
    architecture: Architecture | None = None
    top_provider: TopProvider | None = None
    supported_parameters: list[StrictStr] | None = None
    expiration_date: Timestamp | None = None
    pricing: OpenRouterPricing | None = None


def entries(payload: Any) -> list[RawEntry]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise ResponseError(
            'expected {"data": [...]}, got '
            + (
                f"keys {sorted(payload)[:10]}"
                if isinstance(payload, dict)
                else type(payload).__name__
            )
        )
    return [(raw.get("id") if isinstance(raw, dict) else None, raw) for raw in payload["data"]]


_FIELDS = (
    ("prompt", "input_tiers"),
    ("completion", "output_tiers"),
    ("input_cache_read", "input_cache_read_tiers"),
    ("input_cache_write", "input_cache_write_tiers"),
)


def _tiers(pricing: OpenRouterPricing) -> dict[str, list[dict[str, Any]] | None]:
    """Bands from the base price and the ``min_prompt_tokens`` overrides, per price."""
    bands = [o for o in pricing.overrides or [] if o.min_prompt_tokens is not None]
    return {
        column: banded_tiers(
            getattr(pricing, key), [(o.min_prompt_tokens, getattr(o, key)) for o in bands]
        )
        for key, column in _FIELDS
    }


def to_row(model: OpenRouterModel, model_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    pricing = model.pricing or OpenRouterPricing()
    architecture = model.architecture or Architecture()
    inputs = architecture.input_modalities or []
    outputs = architecture.output_modalities or []
    parameters = set(model.supported_parameters or [])
    capabilities = [
        tag
        for tag, present in (
            ("tool-use", "tools" in parameters),
            ("reasoning", "reasoning" in parameters),
            ("vision", "image" in inputs),
        )
        if present
    ]
    model_type = "language" if "text" in outputs or not outputs else outputs[0]
    capabilities.append(model_type)
    top = model.top_provider or TopProvider()
    return catalog_row(
        source=NAME,
        model_id=model_id,
        canonical_model_id=canonical_id(model_id, raw),
        price_role="gateway",
        model_name=model.name,
        provider=model_id.partition("/")[0] or None,
        description=model.description,
        model_type=model_type,
        context_window=model.context_length or top.context_length,
        max_output_tokens=top.max_completion_tokens,
        gateway_created_at=model.created,
        deprecated_at=model.expiration_date,
        capabilities=capabilities,
        supports_function_calling="tool-use" in capabilities,
        supports_vision="vision" in capabilities,
        supports_reasoning="reasoning" in capabilities,
        cost_per_1m_input=per_million(pricing.prompt),
        cost_per_1m_output=per_million(pricing.completion),
        cost_per_1m_cache_read=per_million(pricing.input_cache_read),
        cost_per_1m_cache_write=per_million(pricing.input_cache_write),
        web_search_cost=pricing.web_search,
        cost_bucket=cost_bucket(pricing.completion),
        pricing=raw.get("pricing"),
        raw=raw,
        **_tiers(pricing),
    )


def canonical_id(model_id: str, raw: dict[str, Any]) -> str:
    """``provider/model`` with the provider alias unified (``x-ai`` → ``xai``). A variant
    (``:free``, ``:thinking``) or a ``~`` "latest" alias stays part of the id: it is a
    different offering, priced differently."""
    provider, _, name = model_id.partition("/")
    return canonical_from_provider_model(provider, name or model_id)


SOURCE = Source(
    name=NAME,
    title="OpenRouter",
    default_url="https://openrouter.ai/api/v1/models",
    url_variables=("MODEL_SYNC_OPENROUTER_URL",),
    entries=entries,
    model=OpenRouterModel,
    to_row=to_row,
    canonical_id=canonical_id,
    essential_fields=frozenset({"id", "pricing"}),
    field_columns={
        "name": ("model_name",),
        "description": ("description",),
        "created": ("gateway_created_at",),
        "context_length": ("context_window",),
        "architecture": (
            "model_type",
            "capabilities",
            "supports_vision",
        ),
        "top_provider": ("context_window", "max_output_tokens"),
        "supported_parameters": (
            "capabilities",
            "supports_function_calling",
            "supports_reasoning",
        ),
        "expiration_date": ("deprecated_at",),
    },
    column_price_paths=frozenset(
        # Overrides stay reported by path too: some are context bands (also tier lists),
        # others (time windows) have no column.
        {"prompt", "completion", "input_cache_read", "input_cache_write", "web_search"}
    ),
    meter_rules={
        # Per search, as served ("0.01" for Anthropic's $10 / 1K).
        "web_search_calls": MeterRule(r"^web_search$"),
        "images": MeterRule(r"^image$"),
    },
    pricing_unit="USD per token (web_search per search, image per image)",
)
