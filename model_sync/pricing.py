"""Exact money arithmetic for gateway prices — pure functions, no I/O.

Gateways publish prices as decimal strings in USD per token (``"0.00000012"``). Binary floats
cannot hold most of them exactly, and a catalog that bills customers must not round, so
every price is a :class:`~decimal.Decimal` from the string to the ``NUMERIC`` column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Any

TOKENS_PER_MILLION_EXPONENT = 6

# A JSON-number-shaped decimal. ``Decimal()`` alone would also take "NaN", "Infinity",
# "1_000" and surrounding whitespace, none of which is a price.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

# Bounds that keep every accepted value storable in a Postgres NUMERIC and meaningful as a
# price: at most a billion dollars a unit, and no more digits after the point than NUMERIC's
# scale limit with room for the per-million shift.
MAX_PRICE = Decimal(10) ** 9
MAX_FRACTION_DIGITS = 1000
# Enough precision that shifting an accepted price never rounds (the default context keeps 28).
_EXACT = Context(prec=MAX_FRACTION_DIGITS + 100)

# Output price per token → bucket. Upper bounds are exclusive, compared as Decimals.
COST_BUCKETS: tuple[tuple[Decimal, str], ...] = (
    (Decimal("0.000001"), "free"),
    (Decimal("0.000005"), "ultra-low"),
    (Decimal("0.00002"), "low"),
    (Decimal("0.0001"), "medium"),
    (Decimal("0.001"), "high"),
)
TOP_COST_BUCKET = "premium"


class PriceError(ValueError):
    """A price that is not a finite, non-negative decimal number."""


def parse_price(value: object) -> Decimal:
    """Parse one published price exactly.

    Strings are the documented form. JSON numbers are accepted too: decoded as ``Decimal``
    from their text they are exact; integers are exact; a binary float (only from callers that
    decoded JSON themselves) goes through its shortest round-trip text (``3e-06`` →
    ``0.000003``), the number as written whenever it has at most 15 significant digits.
    Booleans, NaN, infinities, negatives and anything non-numeric raise :class:`PriceError`.
    """
    if isinstance(value, bool):
        raise PriceError(f"price must be a decimal string, got boolean {value!r}")
    if isinstance(value, Decimal):
        # A JSON number read from its text (see sources.base.decode_json): already exact.
        if not value.is_finite():
            raise PriceError(f"price is not a finite number: {value!r}")
        text = str(value)
    elif isinstance(value, int):
        if value > MAX_PRICE:  # before str(): ints past 4300 digits cannot even be printed
            raise PriceError(f"price is out of range (over {MAX_PRICE})")
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise PriceError(f"price must be a decimal string, got {type(value).__name__}")
    if not _DECIMAL_TEXT.fullmatch(text):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise PriceError(f"price is not a decimal number: {shown!r}")
    try:
        price = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        raise PriceError(f"price is not a decimal number: {text!r}") from None
    if price < 0:
        raise PriceError(f"price is negative: {text!r}")
    if price > MAX_PRICE:
        raise PriceError(f"price is out of range (over {MAX_PRICE}): {text!r}")
    if price != 0 and -price.as_tuple().exponent > MAX_FRACTION_DIGITS:
        raise PriceError(f"price has more than {MAX_FRACTION_DIGITS} decimal places")
    # "-0" and "0.000" are both no charge; store one canonical zero.
    return Decimal(0) if price.is_zero() else price


def per_million(price_per_token: Decimal | None) -> Decimal | None:
    """Scale a per-token price to per-million tokens by shifting the decimal point.

    ``scaleb`` moves the exponent instead of multiplying, so ``0.00000012`` becomes exactly
    ``0.12`` — not ``0.12000000`` — and no digit is ever rounded.
    """
    if price_per_token is None:
        return None
    scaled = price_per_token.scaleb(TOKENS_PER_MILLION_EXPONENT, context=_EXACT)
    # "3" per token is 3E+6 after the shift; write it as a plain integer.
    if scaled.as_tuple().exponent > 0:
        scaled = scaled.quantize(Decimal(1), context=_EXACT)
    return scaled


def cost_bucket(output_price_per_token: Decimal | None) -> str | None:
    """Bucket a model by its per-token output price; ``None`` when it has no output price.

    A model without an output price (embeddings in newer snapshots, empty pricing) is not
    "premium": it is unknown, and routing on a made-up bucket would cost money.
    """
    if output_price_per_token is None:
        return None
    for upper_bound, bucket in COST_BUCKETS:
        if output_price_per_token < upper_bound:
            return bucket
    return TOP_COST_BUCKET


# --- every price in a pricing object ---------------------------------------------------------
# The Python twin of the SQL function ai_model_price_points (migration 0004): the same walk,
# the same rules, tested against each other on every real response.

# A numeric leaf as the SQL function reads it (exponents of at most three digits).
PRICE_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?", re.ASCII)
_PRICE_WORD = re.compile(r"(cost|price)", re.IGNORECASE)
_BOUND_KEY = re.compile(r"^(min|max)(_|$)|_tokens$", re.IGNORECASE)
QUALIFIER_KEYS = frozenset(
    {
        "size", "quality", "resolution", "mode", "width", "height", "duration", "seconds",
        "unit", "currency", "region", "tier", "audio", "name", "type", "description",
    }
)  # fmt: skip


@dataclass(frozen=True)
class PricePoint:
    """One price found in a pricing object: where, how much (exact, as served), and the
    qualifiers that sit beside it in the same entry (size, quality, a band's min/max …)."""

    path: str
    amount: Decimal
    qualifiers: dict[str, Any]


def is_qualifier_key(key: str | None) -> bool:
    """A member that describes its neighbours rather than costing money. A key that mentions
    cost or price is always a price; otherwise ``min*``/``max*``, ``*_tokens`` and a small
    vocabulary of labels are qualifiers."""
    if key is None or _PRICE_WORD.search(key):
        return False
    return bool(_BOUND_KEY.search(key)) or key.lower() in QUALIFIER_KEYS


def _numeric_amount(key: str | None, value: Any) -> Decimal | None:
    """The amount of a member that is a price (negative markers excluded by the caller)."""
    if is_qualifier_key(key) or isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str) and PRICE_TEXT.fullmatch(value):
        return Decimal(value)
    return None


def _children(path: str, value: Any) -> list[tuple[str, str | None, Any]]:
    if isinstance(value, dict):
        return [
            (f"{path}.{key}" if path else str(key), str(key), item) for key, item in value.items()
        ]
    if isinstance(value, list):
        return [(f"{path}[{index}]", None, item) for index, item in enumerate(value)]
    return []


def price_points(pricing: Any) -> list[PricePoint]:
    """Every non-negative numeric leaf of ``pricing`` that is not a qualifier, with its path
    (``regional.eu.input``, ``video_duration_pricing[0].cost_per_second``), its exact amount
    and the qualifiers of its entry. Unknown price kinds appear without code changes."""
    points: list[PricePoint] = []
    containers = [("", pricing)] if isinstance(pricing, dict | list) else []
    while containers:
        path, container = containers.pop()
        members = _children(path, container)
        scalars = [(p, k, v) for p, k, v in members if not isinstance(v, dict | list)]
        amounts = {p: _numeric_amount(k, v) for p, k, v in scalars}
        # Negative numbers (a "price varies" marker) are neither prices nor qualifiers.
        qualifiers = {k: v for p, k, v in scalars if k is not None and amounts[p] is None}
        for member_path, _key, _value in scalars:
            amount = amounts[member_path]
            if amount is not None and amount >= 0:
                points.append(PricePoint(member_path, amount, dict(sorted(qualifiers.items()))))
        containers.extend((p, v) for p, _k, v in members if isinstance(v, dict | list))
    return sorted(points, key=lambda point: point.path)
