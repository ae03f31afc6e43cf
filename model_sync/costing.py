"""The exact cost of a usage record at the prices in force when it ran. Pure: no I/O.

The rule (README "Cost of any usage"), the same as SQL's ``ai_model_cost`` (migration 0007),
tested against it on every tiered model of the real fixtures and at every tier boundary:

- The prices are the model's **version in force at that time** (``ai_model_versions``): the
  one whose ``valid_from ≤ at < valid_to``. No version, or an inactive one, is an error.
- **Token meters** (``input_tokens``, ``output_tokens``, ``cache_read_tokens``,
  ``cache_write_tokens``): when the price has tier bands, the band is chosen by the request's
  prompt size — input + cache-read + cache-write tokens — with ``min`` inclusive and ``max``
  exclusive (the first band that contains it, as served), and *every* token of that meter is
  priced at the band's cost, the providers' long-context rule. Each source's own band rule is
  already in the stored bands (OpenRouter's ``min_prompt_tokens`` from that many tokens,
  models.dev's "over N" and LiteLLM's "above N k" from N + 1). Without bands, the flat price
  per million tokens.
- **Other meters** (``web_search_calls``, ``images``, ``video_seconds``, ``audio_seconds``,
  ``characters``) are priced from the model's price points whose path the source maps to the
  meter (``ai_source_meters``), per the source's unit (Vercel's ``web_search`` is per 1,000
  searches); ``usage.qualifiers`` (``size``, ``quality``, ``resolution``, ``audio``, ``mode``)
  pick the entry of a price list.
- A used meter without a price (or with several candidate prices the qualifiers do not narrow
  to one) is **unpriced**: named in the answer, never a silent 0. ``total`` is the sum of the
  priced meters, exact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext
from typing import Any

from model_sync.pricing import PriceError, parse_price, price_points

TOKEN_METERS: dict[str, tuple[str, str]] = {
    # meter → (flat column, per 1M tokens; tier list, cost per token)
    "input_tokens": ("cost_per_1m_input", "input_tiers"),
    "output_tokens": ("cost_per_1m_output", "output_tiers"),
    "cache_read_tokens": ("cost_per_1m_cache_read", "input_cache_read_tiers"),
    "cache_write_tokens": ("cost_per_1m_cache_write", "input_cache_write_tiers"),
}
PROMPT_METERS = ("input_tokens", "cache_read_tokens", "cache_write_tokens")
OTHER_METERS = ("web_search_calls", "images", "video_seconds", "audio_seconds", "characters")
METERS = (*TOKEN_METERS, *OTHER_METERS)
QUALIFIERS = ("size", "quality", "resolution", "audio", "mode")
PER_MILLION = -6


class UsageError(ValueError):
    """A usage record that cannot be priced as given (unknown meter, negative count …)."""


@dataclass(frozen=True)
class MeterRule:
    """Which price points price a meter for one source, and per how many units they are:
    per 10^unit_exponent units (Vercel's web_search: per 1,000 searches, exponent 3)."""

    path_pattern: str
    unit_exponent: int = 0

    def matches(self, path: str) -> bool:
        return re.search(self.path_pattern, path) is not None


@dataclass(frozen=True)
class Usage:
    counts: dict[str, Decimal]
    qualifiers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, record: Mapping[str, Any]) -> Usage:
        """A usage object: meter counts (absent = 0) and optional ``qualifiers``."""
        unknown = set(record) - {*METERS, "qualifiers"}
        if unknown:
            raise UsageError(f"unknown usage field(s): {', '.join(sorted(unknown))}")
        counts: dict[str, Decimal] = {}
        for meter in METERS:
            value = record.get(meter, 0)
            try:
                count = parse_price(value)  # a non-negative exact number, whatever its JSON type
            except PriceError as error:
                raise UsageError(f"{meter}: {error}".replace("price", "count")) from None
            if meter in TOKEN_METERS and count != count.to_integral_value():
                raise UsageError(f"{meter}: tokens are whole numbers, got {value!r}")
            counts[meter] = count
        qualifiers = record.get("qualifiers") or {}
        if not isinstance(qualifiers, Mapping):
            raise UsageError("qualifiers must be an object")
        unknown = set(qualifiers) - set(QUALIFIERS)
        if unknown:
            raise UsageError(f"unknown qualifier(s): {', '.join(sorted(unknown))}")
        return cls(counts, dict(qualifiers))

    @property
    def prompt_tokens(self) -> Decimal:
        return sum((self.counts[m] for m in PROMPT_METERS), Decimal(0))


@dataclass(frozen=True)
class PriceVersion:
    """What the cost needs from one ``ai_model_versions`` row (pricing decoded exactly)."""

    version_id: int
    source: str
    model_id: str
    is_active: bool
    prices: dict[str, Decimal | None]  # the four flat per-1M columns
    tiers: dict[str, list[dict[str, Any]] | None]  # the four tier lists
    pricing: Any


@dataclass(frozen=True)
class Cost:
    total: Decimal
    meters: dict[str, Decimal]
    version_id: int
    unpriced: list[str]
    reasons: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Exact decimal text for every amount (no consumer should parse it as a float)."""
        return {
            "total": exact_text(self.total),
            "meters": {meter: exact_text(cost) for meter, cost in self.meters.items()},
            "version_id": self.version_id,
            "unpriced": self.unpriced,
        }


def exact_text(value: Decimal) -> str:
    """The amount with no trailing zeros (``3.2``, ``0.0225``, ``10``) — as SQL's trim_scale."""
    return format(value.normalize() if value else Decimal(0), "f")


def band_cost(tiers: Sequence[Mapping[str, Any]], prompt_tokens: Decimal) -> Decimal | None:
    """The cost per token of the first band containing ``prompt_tokens`` (min inclusive, max
    exclusive), or None when no band does."""
    for band in tiers:
        low = Decimal(band.get("min", 0))
        high = band.get("max")
        if low <= prompt_tokens and (high is None or prompt_tokens < Decimal(high)):
            return Decimal(band["cost"])
    return None


def _qualifiers_match(wanted: Mapping[str, Any], offered: Mapping[str, Any]) -> bool:
    return all(
        offered[key] == value and type(offered[key]) is type(value)
        for key, value in wanted.items()
        if key in offered
    )


def cost_of(version: PriceVersion, usage: Usage, rules: Mapping[str, MeterRule]) -> Cost:
    """The cost of ``usage`` at ``version``'s prices, meter by meter (see the module doc)."""
    # Products of exact decimals, with room for every digit: nothing is ever rounded.
    with localcontext(Context(prec=2000)):
        return _cost_of(version, usage, rules)


def _cost_of(version: PriceVersion, usage: Usage, rules: Mapping[str, MeterRule]) -> Cost:
    meters: dict[str, Decimal] = {}
    unpriced: list[str] = []
    reasons: dict[str, str] = {}
    prompt = usage.prompt_tokens
    for meter, (column, tier_column) in TOKEN_METERS.items():
        count = usage.counts[meter]
        if count == 0:
            continue
        tiers = version.tiers.get(tier_column)
        if tiers:
            per_token = band_cost(tiers, prompt)
            if per_token is None:
                unpriced.append(meter)
                reasons[meter] = f"no price band for a prompt of {prompt} tokens"
                continue
            meters[meter] = count * per_token
        elif version.prices.get(column) is not None:
            meters[meter] = (count * version.prices[column]).scaleb(PER_MILLION)
        else:
            unpriced.append(meter)
            reasons[meter] = "no price"
    points = None
    for meter in OTHER_METERS:
        count = usage.counts[meter]
        if count == 0:
            continue
        rule = rules.get(meter)
        if rule is None:
            unpriced.append(meter)
            reasons[meter] = "this source prices no such meter"
            continue
        points = points if points is not None else price_points(version.pricing)
        amounts = {
            point.amount
            for point in points
            if rule.matches(point.path) and _qualifiers_match(usage.qualifiers, point.qualifiers)
        }
        if len(amounts) != 1:
            unpriced.append(meter)
            reasons[meter] = (
                "no price" if not amounts else "several prices: give qualifiers to pick one"
            )
            continue
        meters[meter] = (count * amounts.pop()).scaleb(-rule.unit_exponent)
    total = sum(meters.values(), Decimal(0))
    return Cost(total, meters, version.version_id, unpriced, reasons)
