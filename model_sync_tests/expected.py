"""Expectations computed from the served JSON text alone — never by the code under test."""

from __future__ import annotations

import re
from typing import Any

# (served per-token price key, its tier list key, the per-1M column it fills)
TOKEN_PRICES = (
    ("input", "input_tiers", "cost_per_1m_input"),
    ("output", "output_tiers", "cost_per_1m_output"),
    ("input_cache_read", "input_cache_read_tiers", "cost_per_1m_cache_read"),
    ("input_cache_write", "input_cache_write_tiers", "cost_per_1m_cache_write"),
)
PLAIN_DECIMAL = re.compile(r"(\d+)(?:\.(\d+))?")


def shift_six(price_text: str) -> str:
    """Move the decimal point of a plain decimal string six places right, by text alone."""
    match = PLAIN_DECIMAL.fullmatch(price_text)
    assert match, f"fixture price is not a plain decimal: {price_text!r}"
    whole, fraction = match.group(1), match.group(2) or ""
    digits = (whole + fraction[:6].ljust(6, "0")).lstrip("0") or "0"
    rest = fraction[6:]
    return f"{digits}.{rest}" if rest else digits


def served_base_price(pricing: dict[str, Any], flat_key: str, tier_key: str) -> str | None:
    """The price text the flat column should come from: the flat key, else the first tier."""
    if flat_key in pricing:
        return pricing[flat_key]
    tiers = pricing.get(tier_key)
    return tiers[0]["cost"] if tiers else None
