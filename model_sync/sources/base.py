"""What every source shares: the source definition, JSON decoding, and per-field parsing rules.

A source is one module under ``model_sync/sources/`` that builds a :class:`Source`: its
default URL, how its response is decoded and unwrapped into models (its envelope), the
pydantic model of one entry, and the mapping of a validated entry to catalog columns. The
registry (``model_sync.sources``) lists them; nothing outside this package names a source.

The field rules here are deliberately tolerant of how upstreams drift (a unit change, a number
served as a string) but never guess at money: a price is an exact decimal or it is a problem.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator

from model_sync.costing import MeterRule
from model_sync.pricing import parse_price

# Postgres btree entries are capped at ~2.7 kB; the catalog's unique key must always fit.
MAX_ID_BYTES = 1000
_MAX_BIGINT = 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Unix time units, told apart by magnitude: below 10^11 a number is seconds (up to the year
# 5138), below 10^14 milliseconds, below 10^17 microseconds (each from 1973 to 5138). No real
# catalog date is before 1973 in ms/µs or after 5138 in seconds, so the ranges cannot collide.
SECONDS_BELOW = 10**11
MILLISECONDS_BELOW = 10**14
MICROSECONDS_BELOW = 10**17


class PriceRole(StrEnum):
    """Whose price a row carries — what the cross-source comparison compares.

    ``gateway``: the price a gateway charges (Vercel, OpenRouter); ``list``: the model
    provider's own list price (models.dev / LiteLLM entries of the provider itself);
    ``reseller``: someone else's route to the model (cloud marketplaces, inference hosts,
    copies of a gateway's list) — kept in the catalog, not compared, since their prices
    legitimately differ.
    """

    GATEWAY = "gateway"
    LIST = "list"
    RESELLER = "reseller"


# Model providers whose own price lists are the reference ("list" rows). Names as the
# canonical ids spell them (after PROVIDER_ALIASES).
FIRST_PARTY_PROVIDERS = frozenset(
    {
        "anthropic", "openai", "google", "xai", "mistral", "deepseek", "moonshotai",
        "alibaba", "zai", "minimax", "cohere", "perplexity", "meta", "amazon", "ai21",
        "voyage", "inception", "nvidia", "morph",
    }
)  # fmt: skip


class Served(BaseModel):
    """Base of every source's pydantic models: extra fields are allowed. Sources add keys (new
    dates, tags, price kinds) faster than we model them, and an unknown key must never make a
    model fail; what is not modelled is still kept (the raw model is stored whole)."""

    model_config = ConfigDict(extra="allow")


class ResponseError(ValueError):
    """The body is not the source's model list (not JSON, or not its envelope)."""


RawEntry = tuple[Any, Any]
"""One served model: (its id as served, the model object as served)."""


@dataclass(frozen=True)
class Source:
    """One upstream catalog: where it lives, how its response is read, how a model maps.

    ``essential_fields``: top-level fields of an entry whose failure makes the whole entry
    unusable (its id, its prices — money is never half-read). A broken optional field is set
    aside and the rest of the model is used; ``field_columns`` says which catalog columns each
    optional field feeds, so those columns keep their last valid values.
    """

    name: str
    title: str
    default_url: str
    url_variables: tuple[str, ...]
    entries: Callable[[Any], Iterable[RawEntry]]
    model: type[BaseModel]
    to_row: Callable[[BaseModel, str, dict[str, Any]], dict[str, Any]]
    canonical_id: Callable[[str, dict[str, Any]], str]
    essential_fields: frozenset[str]
    field_columns: Mapping[str, tuple[str, ...]]
    # Paths of the source's pricing object that flat catalog columns already report (their
    # changes are reported once, under the column).
    column_price_paths: frozenset[str] = field(default_factory=frozenset)
    # Unit of the amounts in the source's pricing object, for the README and the price view.
    pricing_unit: str = "per token"
    # Usage meters beyond tokens (web search, images, seconds, characters): which price points
    # price them, per how many units (model_sync.costing; stored in ai_source_meters).
    meter_rules: Mapping[str, MeterRule] = field(default_factory=dict)


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates escaped, so a report about a bad model can itself
    be logged and stored."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


# Levels of nesting a stored model may have: orjson's limit, which keeps every step after the
# transform (orjson, the standard library's encoder, Postgres's jsonb parser) within its stack.
# Real catalogs nest four levels.
MAX_NESTING = 254


def unstorable_value(value: Any) -> str | None:
    """Where ``value`` holds what Postgres cannot store, if anywhere.

    Postgres ``text`` and ``jsonb`` refuse U+0000 and invalid UTF-8, and ``jsonb`` refuses
    NaN and infinities (which Python's JSON parser lets through); one such value would abort
    the whole write transaction, so the model carrying it is set aside up front. The walk is
    iterative, so a hostile nesting depth gets a reason rather than a RecursionError.
    """
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"{path or 'value'} is not a finite number ({item!r})"
        if isinstance(item, str):
            if "\x00" in item:
                return f"{path or 'value'} contains a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return f"{path or 'value'} contains invalid unicode (a lone surrogate)"
        elif isinstance(item, dict | list):
            if depth >= MAX_NESTING:
                return f"{path or 'value'} is nested more than {MAX_NESTING} levels deep"
            if isinstance(item, dict):
                members = item.items()
                for key, _ in members:
                    pending.append((key, f"{path}.<key>" if path else "<key>", depth + 1))
                pending.extend(
                    (member, f"{path}.{key}" if path else str(key), depth + 1)
                    for key, member in members
                )
            else:
                pending.extend(
                    (member, f"{path}[{position}]", depth + 1)
                    for position, member in enumerate(item)
                )
    return None


class NonFinite(float):
    """``NaN``/``Infinity`` as Python's JSON parser lets them through: kept as a float (so a
    value check sees a non-finite number), of a type no JSON serializer writes — so the
    storability check of the transform notices it at C speed."""


def decode_json(body: bytes) -> Any:
    """Parse a response body; JSON numbers with a fraction or exponent become ``Decimal`` read
    from their text (``1.25e-06`` is exactly ``1.25E-6``), never binary floats."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=lambda name: NonFinite(name))
    # ValueError covers invalid JSON, bad UTF-8 and integers past Python's digit limit.
    except ValueError as error:
        raise ResponseError(f"the response is not JSON ({error})") from None
    except RecursionError:
        raise ResponseError("the response is nested too deeply to parse") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def parse_count(value: Any) -> int:
    """A token count: a non-negative integer (``128000.0`` is accepted, ``True`` is not)."""
    if not _is_number(value):
        raise ValueError(f"expected a non-negative integer, got {type(value).__name__}")
    if isinstance(value, float | Decimal):
        if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
            raise ValueError(f"expected a non-negative integer, got {value!r}")
        if value != int(value):
            raise ValueError(f"expected a non-negative integer, got {value!r}")
    count = int(value)
    if not 0 <= count <= _MAX_BIGINT:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return count


def parse_timestamp(value: Any) -> datetime:
    """An instant from unix seconds, milliseconds or microseconds (told apart by magnitude,
    see ``SECONDS_BELOW``), a string of digits in one of those units, or ISO-8601 text."""
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit() and text.isascii():
            return _from_unix_number(Decimal(text), value)
        return _from_iso(value)
    if not _is_number(value):
        raise ValueError(f"expected a unix time or an ISO-8601 time, got {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"unix time out of range: {value!r}")
        value = Decimal(repr(value))
    return _from_unix_number(Decimal(value) if isinstance(value, int) else value, value)


def _from_unix_number(number: Decimal, shown: Any) -> datetime:
    if not number.is_finite() or number < 0 or number >= MICROSECONDS_BELOW:
        raise ValueError(f"unix time out of range: {_short(shown)}")
    if number < SECONDS_BELOW:
        micros = number.scaleb(6)
    elif number < MILLISECONDS_BELOW:
        micros = number.scaleb(3)
    else:
        micros = number
    # Whole microseconds, exactly: no float on the way.
    return EPOCH + timedelta(microseconds=int(micros.to_integral_value()))


_YEAR_MONTH = re.compile(r"\d{4}-\d{2}")


def _from_iso(value: str) -> datetime:
    if _YEAR_MONTH.fullmatch(value.strip()):
        # ISO 8601's reduced precision ("2024-09", as models.dev dates releases): its first day.
        value = value.strip() + "-01"
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        # Normalized to UTC here, so a time that only exists in its own zone (year 0 or
        # 10000 once shifted) is refused now rather than by the database.
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"expected a unix time or an ISO-8601 time, got {_short(value)}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 42 else text[:40] + "…"


def parse_model_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string id, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("missing or empty id")
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_ID_BYTES:
        raise ValueError(f"id longer than {MAX_ID_BYTES} bytes")
    return value


def parse_decimal_number(value: Any) -> Decimal:
    """A plain non-negative number (a threshold, a size) as an exact Decimal."""
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"expected a number, got {_short(value)}") from None
    if not _is_number(value):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return parse_price(value)


def remembered(parse: Callable[[Any], Any], kinds: tuple[type, ...]) -> Callable[[Any], Any]:
    """``parse`` with its results kept for served values of exactly these types.

    A catalog repeats the same price texts, limits and dates across thousands of models; each
    distinct value is parsed once per process. Only types whose equal values are identical
    (``str``, ``int``: not ``Decimal``, where ``1.0 == 1``) are kept, results are immutable, and
    failures are never kept (they raise every time).
    """
    results: dict[tuple[type, Any], Any] = {}

    def parse_remembered(value: Any) -> Any:
        kind = type(value)
        if kind not in kinds:
            return parse(value)
        key = (kind, value)
        found = results.get(key, results)
        if found is not results:
            return found
        parsed = parse(value)
        if len(results) < REMEMBERED_VALUES:
            results[key] = parsed
        return parsed

    return parse_remembered


REMEMBERED_VALUES = 100_000
Price = Annotated[Decimal, PlainValidator(remembered(parse_price, (str, int)))]
Count = Annotated[int, PlainValidator(remembered(parse_count, (int,)))]
Timestamp = Annotated[datetime, PlainValidator(remembered(parse_timestamp, (str, int)))]
ModelId = Annotated[str, PlainValidator(parse_model_id)]


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def dict_entries(payload: Any, what: str) -> dict[str, Any]:
    """The top-level object of a keyed catalog, or a clear error."""
    if not isinstance(payload, dict):
        raise ResponseError(f"expected a JSON object of {what}, got {type(payload).__name__}")
    return payload


# Provider names that mean the same company across sources; the canonical one is the value.
# (OpenRouter says "x-ai", the Vercel gateway "xai"; see README "Model identity".)
PROVIDER_ALIASES: dict[str, str] = {
    "x-ai": "xai",
    "z-ai": "zai",
    "zhipuai": "zai",
    "meta-llama": "meta",
    "mistralai": "mistral",
    "qwen": "alibaba",
    "moonshot": "moonshotai",
    "gemini": "google",
    "vertex_ai": "google",
    "amazon-nova": "amazon",
    "voyageai": "voyage",
}


def canonical_provider(provider: str) -> str:
    provider = provider.lower()
    return PROVIDER_ALIASES.get(provider, provider)


def canonical_from_provider_model(provider: str, model: str) -> str:
    """``provider/model``: lowercase, the provider's alias unified, and dots in the model name
    written as dashes (``claude-opus-4.5`` and ``claude-opus-4-5`` are one model). Nothing is
    trimmed: ids are kept verbatim, and so is what the identity is built from."""
    return f"{canonical_provider(provider)}/{model.lower().replace('.', '-')}"


def tier_entries(
    tiers: Iterable[tuple[Decimal, int, int | None, Mapping[str, Any]]],
) -> list[dict[str, Any]]:
    """Tiers as stored, whatever the source: in served order, cost per token as an exact
    decimal string, ``min`` filled in, ``max`` (exclusive) only when the band has one, and any
    other keys the source served beside them."""
    stored = []
    for cost, minimum, maximum, extra in tiers:
        entry: dict[str, Any] = {k: v for k, v in extra.items() if k not in ("cost", "min", "max")}
        entry["cost"] = format(cost, "f")
        entry["min"] = minimum
        if maximum is not None:
            entry["max"] = maximum
        stored.append(entry)
    return stored


def banded_tiers(
    base: Decimal | None, bands: Iterable[tuple[int, Decimal | None]]
) -> list[dict[str, Any]] | None:
    """Tier entries from a base price (from token 0) and ``(first token, price)`` bands, each
    band ending where the next begins; None when there is no base price or no priced band."""
    priced = sorted((start, price) for start, price in bands if price is not None)
    if base is None or not priced:
        return None
    starts = [0] + [start for start, _ in priced]
    costs = [base] + [price for _, price in priced]
    ends = [*starts[1:], None]
    return tier_entries(zip(costs, starts, ends, [{}] * len(costs), strict=True))


# Defaults of the catalog columns a source may leave out.
_ROW_DEFAULTS: dict[str, Any] = {
    "canonical_model_id": None,
    "price_role": None,
    "model_name": None,
    "provider": None,
    "owned_by": None,
    "description": None,
    "model_type": None,
    "context_window": None,
    "max_output_tokens": None,
    "released_at": None,
    "gateway_created_at": None,
    "deprecated_at": None,
    "capabilities": (),
    "supports_function_calling": False,
    "supports_vision": False,
    "supports_reasoning": False,
    "cost_per_1m_input": None,
    "cost_per_1m_output": None,
    "cost_per_1m_cache_read": None,
    "cost_per_1m_cache_write": None,
    "web_search_cost": None,
    "input_tiers": None,
    "output_tiers": None,
    "input_cache_read_tiers": None,
    "input_cache_write_tiers": None,
    "cost_bucket": None,
    "pricing": None,
}


def catalog_row(*, source: str, model_id: str, raw: Any, **columns: Any) -> dict[str, Any]:
    """One catalog row: the source's columns over the defaults. (Every source's rows are
    checked to hold exactly the frame's columns by the tests; not here, per model.)"""
    row = {**_ROW_DEFAULTS, **columns, "source": source, "model_id": model_id, "raw": raw}
    if type(row["price_role"]) is PriceRole:
        row["price_role"] = row["price_role"].value
    if type(row["capabilities"]) is tuple:
        row["capabilities"] = list(row["capabilities"])
    return row
