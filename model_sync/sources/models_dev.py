"""models.dev ``api.json``: every provider's models (5,000+), with costs per million tokens.

``{"<provider>": {"id", "name", …, "models": {"<model>": {…, "cost": {…}, "limit": {…}}}}}``.
Each model becomes ``<provider>/<model>``. Costs are JSON numbers in USD per **million**
tokens, read as decimals from their text (``0.3`` is exactly 0.3). Long-context prices come
as ``cost.tiers`` (``{"tier": {"type": "context", "size": N}, …}``: prompts *over* N tokens)
and ``cost.context_over_200k``; both become tier bands starting at N + 1, the same convention
as the gateways' (a band's ``min`` is inclusive, ``max`` exclusive).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import StrictBool, StrictStr

from model_sync.pricing import cost_bucket
from model_sync.sources.base import (
    FIRST_PARTY_PROVIDERS,
    Count,
    Price,
    PriceRole,
    RawEntry,
    ResponseError,
    Served,
    Source,
    Timestamp,
    banded_tiers,
    canonical_from_provider_model,
    canonical_provider,
    catalog_row,
    dict_entries,
)

NAME = "models_dev"
PER_MILLION_TO_PER_TOKEN = -6
CONTEXT_OVER_200K = 200_000


class TierSpec(Served):
    type: StrictStr | None = None
    size: Count


class CostTier(Served):
    input: Price | None = None
    output: Price | None = None
    cache_read: Price | None = None
    cache_write: Price | None = None
    tier: TierSpec


class OverContext(Served):
    input: Price | None = None
    output: Price | None = None
    cache_read: Price | None = None
    cache_write: Price | None = None


class Cost(Served):
    input: Price | None = None
    output: Price | None = None
    cache_read: Price | None = None
    cache_write: Price | None = None
    tiers: list[CostTier] | None = None
    context_over_200k: OverContext | None = None


class Limit(Served):
    context: Count | None = None
    output: Count | None = None


class Modalities(Served):
    input: list[StrictStr] | None = None
    output: list[StrictStr] | None = None


class ModelsDevModel(Served):
    name: StrictStr | None = None
    family: StrictStr | None = None
    description: StrictStr | None = None
    reasoning: StrictBool | None = None
    tool_call: StrictBool | None = None
    release_date: Timestamp | None = None
    modalities: Modalities | None = None
    limit: Limit | None = None
    cost: Cost | None = None


def entries(payload: Any) -> list[RawEntry]:
    """Every model of every provider, as ``(provider/model, model)``."""
    found: list[RawEntry] = []
    for provider_id, provider in dict_entries(payload, "providers").items():
        if not isinstance(provider, dict) or not isinstance(provider.get("models"), dict):
            raise ResponseError(f"provider {provider_id!r} has no models object")
        for model_key, model in provider["models"].items():
            found.append((f"{provider_id}/{model_key}", model))
    return found


def _per_token(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.scaleb(PER_MILLION_TO_PER_TOKEN)


_FIELDS = (
    ("input", "input_tiers"),
    ("output", "output_tiers"),
    ("cache_read", "input_cache_read_tiers"),
    ("cache_write", "input_cache_write_tiers"),
)


def _tiers(cost: Cost) -> dict[str, list[dict[str, Any]] | None]:
    """Bands (per token) from ``cost.tiers``, else from ``cost.context_over_200k``."""
    bands: list[tuple[int, Any]] = [
        (tier.tier.size + 1, tier)
        for tier in cost.tiers or []
        if tier.tier.type in (None, "context")
    ]
    if not bands and cost.context_over_200k is not None:
        bands = [(CONTEXT_OVER_200K + 1, cost.context_over_200k)]
    return {
        column: banded_tiers(
            _per_token(getattr(cost, key)),
            [(start, _per_token(getattr(band, key))) for start, band in bands],
        )
        for key, column in _FIELDS
    }


def _split(model_id: str) -> tuple[str, str]:
    provider, _, model_key = model_id.partition("/")
    return provider, model_key


def price_role(model_id: str) -> PriceRole:
    """A provider listing its own model (``anthropic/claude-…``) is a list price; a route to
    someone else's model (``requesty/google/gemini-…``, ``vercel/…``) is a reseller's."""
    provider, model_key = _split(model_id)
    own = canonical_provider(provider) in FIRST_PARTY_PROVIDERS and "/" not in model_key
    return PriceRole.LIST if own else PriceRole.RESELLER


def canonical_id(model_id: str, raw: dict[str, Any]) -> str:
    """A provider's own model: ``provider/model``. A reseller's route named ``creator/model``
    (``requesty/google/gemini-2.5-pro``): the creator's id. Any other route keeps its host."""
    provider, model_key = _split(model_id)
    creator, slash, name = model_key.rpartition("/")
    if slash and "/" not in creator:
        return canonical_from_provider_model(creator, name)
    return canonical_from_provider_model(provider, model_key)


def to_row(model: ModelsDevModel, model_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    cost = model.cost or Cost()
    modalities = model.modalities or Modalities()
    inputs, outputs = modalities.input or [], modalities.output or []
    capabilities = [
        tag
        for tag, present in (
            ("tool-use", bool(model.tool_call)),
            ("reasoning", bool(model.reasoning)),
            ("vision", "image" in inputs),
        )
        if present
    ]
    model_type = "language" if "text" in outputs or not outputs else outputs[0]
    capabilities.append(model_type)
    limit = model.limit or Limit()
    provider, _ = _split(model_id)
    return catalog_row(
        source=NAME,
        model_id=model_id,
        canonical_model_id=canonical_id(model_id, raw),
        price_role=price_role(model_id),
        model_name=model.name,
        provider=provider,
        owned_by=model.family,
        description=model.description,
        model_type=model_type,
        context_window=limit.context,
        max_output_tokens=limit.output,
        released_at=model.release_date,
        capabilities=capabilities,
        supports_function_calling="tool-use" in capabilities,
        supports_vision="vision" in capabilities,
        supports_reasoning="reasoning" in capabilities,
        # Already per million tokens: no scaling, exact as served.
        cost_per_1m_input=cost.input,
        cost_per_1m_output=cost.output,
        cost_per_1m_cache_read=cost.cache_read,
        cost_per_1m_cache_write=cost.cache_write,
        cost_bucket=cost_bucket(_per_token(cost.output)),
        pricing=raw.get("cost"),
        raw=raw,
        **_tiers(cost),
    )


SOURCE = Source(
    name=NAME,
    title="models.dev",
    default_url="https://models.dev/api.json",
    url_variables=("MODEL_SYNC_MODELS_DEV_URL",),
    entries=entries,
    model=ModelsDevModel,
    to_row=to_row,
    canonical_id=canonical_id,
    essential_fields=frozenset({"cost"}),
    field_columns={
        "name": ("model_name",),
        "family": ("owned_by",),
        "description": ("description",),
        "reasoning": ("capabilities", "supports_reasoning"),
        "tool_call": ("capabilities", "supports_function_calling"),
        "release_date": ("released_at",),
        "modalities": ("model_type", "capabilities", "supports_vision"),
        "limit": ("context_window", "max_output_tokens"),
    },
    column_price_paths=frozenset(
        {"input", "output", "cache_read", "cache_write", "tiers", "context_over_200k"}
    ),
    pricing_unit="USD per million tokens",
)
