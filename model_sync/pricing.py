"""Exact money arithmetic for gateway prices — pure functions, no I/O.

Gateways publish prices as decimal strings in USD per token (``"0.00000012"``). Binary floats
cannot hold most of them exactly, and a catalog that bills customers must not round, so
every price is a :class:`~decimal.Decimal` from the string to the ``NUMERIC`` column.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation

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

    Strings are the documented form. JSON numbers are accepted too, with a defined outcome:
    integers exactly, floats through their shortest round-trip text (``3e-06`` → ``0.000003``),
    which is the number as the sender wrote it whenever it has at most 15 significant digits.
    Booleans, NaN, infinities, negatives and anything non-numeric raise :class:`PriceError`.
    """
    if isinstance(value, bool):
        raise PriceError(f"price must be a decimal string, got boolean {value!r}")
    if isinstance(value, int):
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
