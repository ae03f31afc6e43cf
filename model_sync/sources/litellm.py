"""LiteLLM's ``model_prices_and_context_window.json``: ~3,000 entries keyed by model name.

``{"<model key>": {"litellm_provider", "mode", "max_input_tokens", "input_cost_per_token", …}}``;
the first key, ``sample_spec``, documents the format and is not a model. Costs are JSON
numbers per token (``1.25e-06``), read as decimals from their text — ``1.25e-06`` per token
is exactly ``1.25`` per million. ``*_above_<N>k_tokens`` keys are long-context prices: a band
from N·1000 + 1 tokens (LiteLLM's rule: above N k), in the same tier lists as the gateways'.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pydantic import PrivateAttr, StrictBool, StrictStr, model_validator

from model_sync.costing import MeterRule
from model_sync.pricing import PriceError, cost_bucket, parse_price, per_million
from model_sync.sources.base import (
    FIRST_PARTY_PROVIDERS,
    Count,
    Price,
    PriceRole,
    RawEntry,
    Served,
    Source,
    Timestamp,
    banded_tiers,
    canonical_from_provider_model,
    canonical_provider,
    catalog_row,
    dict_entries,
)

NAME = "litellm"
DOCUMENTATION_ENTRY = "sample_spec"
# LiteLLM provider names that mean a model provider's own API (its list price).
PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "xai": "xai",
    "mistral": "mistral",
    "codestral": "mistral",
    "deepseek": "deepseek",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "perplexity": "perplexity",
    "moonshot": "moonshotai",
    "dashscope": "alibaba",
    "zai": "zai",
    "minimax": "minimax",
    "voyage": "voyage",
    "ai21": "ai21",
}
MODES = {
    "chat": "language",
    "completion": "language",
    "responses": "language",
    "embedding": "embedding",
    "image_generation": "image",
    "video_generation": "video",
}
_BASE_KEYS = {
    "input_cost_per_token": "input_tiers",
    "output_cost_per_token": "output_tiers",
    "cache_read_input_token_cost": "input_cache_read_tiers",
    "cache_creation_input_token_cost": "input_cache_write_tiers",
}
_ABOVE = re.compile(r"^(?P<base>[a-z_]+)_above_(?P<thousands>\d+)k_tokens$")


class LiteLLMEntry(Served):
    litellm_provider: StrictStr | None = None
    mode: StrictStr | None = None
    max_tokens: Count | None = None
    max_input_tokens: Count | None = None
    max_output_tokens: Count | None = None
    input_cost_per_token: Price | None = None
    output_cost_per_token: Price | None = None
    cache_read_input_token_cost: Price | None = None
    cache_creation_input_token_cost: Price | None = None
    supports_function_calling: StrictBool | None = None
    supports_vision: StrictBool | None = None
    supports_reasoning: StrictBool | None = None
    deprecation_date: Timestamp | None = None
    # (first token of the band, price per token) of each "<price>_above_<N>k_tokens" key
    _bands: dict[str, list[tuple[int, Decimal]]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _read_bands(self) -> LiteLLMEntry:
        """Long-context prices are prices too: parsed here, so a broken one fails the entry
        like any other price instead of surfacing later."""
        for key, value in (self.model_extra or {}).items():
            match = _ABOVE.match(key)
            if match and match["base"] in _BASE_KEYS:
                try:
                    price = parse_price(value)
                except PriceError as error:
                    raise ValueError(f"{key}: {error}") from None
                start = int(match["thousands"]) * 1000 + 1
                self._bands.setdefault(match["base"], []).append((start, price))
        return self


def entries(payload: Any) -> list[RawEntry]:
    return [
        (key, entry)
        for key, entry in dict_entries(payload, "model entries").items()
        if key != DOCUMENTATION_ENTRY
    ]


def _pricing(raw: dict[str, Any]) -> dict[str, Any]:
    """The entry's prices: every key that names a cost, as served."""
    return {key: value for key, value in raw.items() if "cost" in key}


def _tiers(entry: LiteLLMEntry) -> dict[str, list[dict[str, Any]] | None]:
    """Bands from the ``<price>_above_<N>k_tokens`` keys (service-tier variants such as
    ``…_priority`` are other prices, left in ``pricing``)."""
    return {
        column: banded_tiers(getattr(entry, base_key), entry._bands.get(base_key, []))
        for base_key, column in _BASE_KEYS.items()
    }


def _creator(model_id: str, entry: dict[str, Any]) -> tuple[str | None, str]:
    """(the model's provider when this is its own API, the model name) for an entry."""
    provider = PROVIDERS.get(str(entry.get("litellm_provider") or ""))
    name = model_id.rsplit("/", 1)[-1]
    return provider, name


def price_role(model_id: str, entry: dict[str, Any]) -> PriceRole:
    provider, _ = _creator(model_id, entry)
    # "gemini/gemini-2.5-pro" is Google's own API; "bedrock/…", "vercel_ai_gateway/…" are not.
    prefix = model_id.split("/", 1)[0] if "/" in model_id else None
    own = provider in FIRST_PARTY_PROVIDERS and (
        prefix is None or canonical_provider(prefix) == provider
    )
    return PriceRole.LIST if own else PriceRole.RESELLER


def canonical_id(model_id: str, raw: dict[str, Any]) -> str:
    """``gpt-4o`` with provider ``openai`` → ``openai/gpt-4o``; ``gemini/gemini-2.5-pro`` →
    ``google/gemini-2-5-pro``; a route through someone else (``bedrock/…``) keeps its key."""
    provider, name = _creator(model_id, raw)
    if provider is not None and price_role(model_id, raw) == PriceRole.LIST:
        return canonical_from_provider_model(provider, name)
    host = str(raw.get("litellm_provider") or "unknown")
    return canonical_from_provider_model(host, model_id)


def to_row(entry: LiteLLMEntry, model_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    model_type = MODES.get(entry.mode or "", entry.mode)
    capabilities = [
        tag
        for tag, present in (
            ("tool-use", bool(entry.supports_function_calling)),
            ("reasoning", bool(entry.supports_reasoning)),
            ("vision", bool(entry.supports_vision)),
        )
        if present
    ]
    if model_type:
        capabilities.append(model_type)
    return catalog_row(
        source=NAME,
        model_id=model_id,
        canonical_model_id=canonical_id(model_id, raw),
        price_role=price_role(model_id, raw),
        provider=entry.litellm_provider,
        model_type=model_type,
        context_window=entry.max_input_tokens or entry.max_tokens,
        max_output_tokens=entry.max_output_tokens,
        deprecated_at=entry.deprecation_date,
        capabilities=capabilities,
        supports_function_calling=bool(entry.supports_function_calling),
        supports_vision=bool(entry.supports_vision),
        supports_reasoning=bool(entry.supports_reasoning),
        cost_per_1m_input=per_million(entry.input_cost_per_token),
        cost_per_1m_output=per_million(entry.output_cost_per_token),
        cost_per_1m_cache_read=per_million(entry.cache_read_input_token_cost),
        cost_per_1m_cache_write=per_million(entry.cache_creation_input_token_cost),
        cost_bucket=cost_bucket(entry.output_cost_per_token),
        pricing=_pricing(raw),
        raw=raw,
        **_tiers(entry),
    )


SOURCE = Source(
    name=NAME,
    title="LiteLLM price map",
    default_url=(
        "https://raw.githubusercontent.com/BerriAI/litellm/main/"
        "model_prices_and_context_window.json"
    ),
    url_variables=("MODEL_SYNC_LITELLM_URL",),
    entries=entries,
    model=LiteLLMEntry,
    to_row=to_row,
    canonical_id=canonical_id,
    # Any key naming a cost is a price; those are essential (see transform.normalize), so they
    # are validated through the model's typed fields and the tier parsing.
    essential_fields=frozenset(
        {
            "input_cost_per_token",
            "output_cost_per_token",
            "cache_read_input_token_cost",
            "cache_creation_input_token_cost",
        }
    ),
    field_columns={
        "litellm_provider": ("provider", "canonical_model_id", "price_role"),
        "mode": ("model_type", "capabilities"),
        "max_tokens": ("context_window",),
        "max_input_tokens": ("context_window",),
        "max_output_tokens": ("max_output_tokens",),
        "supports_function_calling": ("capabilities", "supports_function_calling"),
        "supports_vision": ("capabilities", "supports_vision"),
        "supports_reasoning": ("capabilities", "supports_reasoning"),
        "deprecation_date": ("deprecated_at",),
    },
    column_price_paths=frozenset(
        {*_BASE_KEYS, *(f"{k}_above_{n}k_tokens" for k in _BASE_KEYS for n in (128, 200, 272))}
    ),
    meter_rules={
        "images": MeterRule(r"^output_cost_per_image$"),
        "video_seconds": MeterRule(r"^output_cost_per_video_per_second$"),
        "audio_seconds": MeterRule(r"^(input_cost_per_audio_per_second|input_cost_per_second)$"),
        "characters": MeterRule(r"^input_cost_per_character$"),
    },
    pricing_unit="USD per token (other keys per their name: per image, per second, per query)",
)
