"""Served models → one normalized pandas frame. Pure: plain data in, frame out, no I/O.

A source that serves one broken model must not stop the catalog from learning about the other
three hundred, and a served model must never be lost because one of its fields drifted. So
validation is per model and per field:

- a model whose optional field is broken (a date in an unknown unit, a limit as text) keeps
  every other field; the broken field's columns keep their last valid values in the catalog
  (``kept_columns``), and the row is marked stale with the reason;
- a model whose essential field is broken (its prices — money is never half-read — or a value
  Postgres cannot store) is *broken*: the sync keeps its last valid row, active and marked
  stale, or skips it with its reason when the catalog never held a valid form of it;
- an entry without a usable id, or repeating an id, is *skipped* with its reason.

Which fields are essential, and which columns each optional field feeds, is the source's
declaration (``Source.essential_fields``, ``Source.field_columns``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import pandas as pd
from pydantic import ValidationError

from model_sync.drift import SchemaProfile, profile_models
from model_sync.sources.base import (
    RawEntry,
    Source,
    parse_model_id,
    storable_text,
    unstorable_value,
)

# The catalog columns the transform produces, in order, with their pandas dtypes. Integers and
# flags use pandas' nullable dtypes so a missing value stays missing instead of turning the
# column into floats; prices stay Python Decimals (object) so no digit is ever rounded.
FRAME_DTYPES: dict[str, str] = {
    "source": "object",
    "model_id": "object",
    "canonical_model_id": "object",
    "price_role": "object",
    "model_name": "object",
    "provider": "object",
    "owned_by": "object",
    "description": "object",
    "model_type": "object",
    "context_window": "Int64",
    "max_output_tokens": "Int64",
    "released_at": "datetime64[us, UTC]",
    "gateway_created_at": "datetime64[us, UTC]",
    "deprecated_at": "datetime64[us, UTC]",
    "capabilities": "object",
    "supports_function_calling": "boolean",
    "supports_vision": "boolean",
    "supports_reasoning": "boolean",
    "cost_per_1m_input": "object",
    "cost_per_1m_output": "object",
    "cost_per_1m_cache_read": "object",
    "cost_per_1m_cache_write": "object",
    "web_search_cost": "object",
    "input_tiers": "object",
    "output_tiers": "object",
    "input_cache_read_tiers": "object",
    "input_cache_write_tiers": "object",
    "cost_bucket": "object",
    "pricing": "object",
    "raw": "object",
}
FRAME_COLUMNS: tuple[str, ...] = tuple(FRAME_DTYPES)
# Per-row marks beside the catalog columns: why a served value could not be read, and which
# columns therefore keep their stored values.
MARK_DTYPES: dict[str, str] = {"stale_reason": "object", "kept_columns": "object"}


@dataclass(frozen=True)
class SkippedModel:
    """A served entry that is not in the frame, and why. The id is verbatim; use
    :meth:`as_record` for anything that is logged or stored."""

    index: int
    model_id: str | None
    reason: str

    def as_record(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "model_id": None if self.model_id is None else storable_text(self.model_id),
            "reason": storable_text(self.reason),
        }

    def label(self) -> str:
        if self.model_id is None:
            return f"<model #{self.index}>"
        return storable_text(self.model_id)


class BrokenModel(SkippedModel):
    """A served model with a usable id whose essential fields could not be read: the sync keeps
    its last valid row (stale) or, for a model never held, skips it."""


@dataclass(frozen=True)
class NormalizedModels:
    """The transform's result: valid rows as a frame, broken and skipped entries with reasons,
    and the response's schema profile (key paths and value types)."""

    frame: pd.DataFrame
    broken: list[BrokenModel] = field(default_factory=list)
    skipped: list[SkippedModel] = field(default_factory=list)
    profile: SchemaProfile = field(default_factory=dict)

    @property
    def served(self) -> int:
        return len(self.frame) + len(self.broken) + len(self.skipped)

    @property
    def stale(self) -> int:
        """Models whose row is incomplete (a broken optional field), before the sync adds the
        broken models it keeps."""
        return int(self.frame["stale_reason"].notna().sum()) if len(self.frame) else 0


def _decimals_only(value: Any) -> Any:
    # A JSON number read as a Decimal is storable; anything else orjson cannot write (a
    # NonFinite NaN, say) is a reason to look closer.
    if isinstance(value, Decimal):
        return 0
    raise TypeError


def _storable_problem(raw: dict[str, Any]) -> str | None:
    """The fast check behind :func:`unstorable_value`: one C-speed serialization per model
    (orjson refuses lone surrogates, NonFinite numbers and nesting past ``MAX_NESTING``).

    Only when it finds something, or the text holds what may hide a problem, is the model
    walked, to name the field: orjson writes NUL as ``\\u0000`` and a plain float NaN or
    infinity (a caller's ``json.loads``, not ``decode_json``) silently as ``null``.
    """
    try:
        text = orjson.dumps(raw, default=_decimals_only)
    except TypeError:  # orjson.JSONEncodeError is one
        # Integers past 64 bits are storable; the walk says whether anything else is wrong.
        return unstorable_value(raw)
    return unstorable_value(raw) if b"\\u0000" in text or b"null" in text else None


def _describe(error: ValidationError) -> str:
    """A one-line reason naming each failing field, e.g. ``pricing.input: price is negative``."""
    parts = []
    for detail in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in detail["loc"]) or "model"
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def _failed_fields(error: ValidationError) -> set[str]:
    return {str(detail["loc"][0]) if detail["loc"] else "" for detail in error.errors()}


@contextlib.contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one bulk pass over a catalog.

    Validating and mapping a catalog allocates a few objects per served value (pydantic
    models, rows, Decimals), and every few hundred allocations the collector walks the
    tracked objects — the whole decoded response included — looking for reference cycles
    that these passes never create. Measured on a 40,000-model response, those walks were
    a fifth to a third of the transform's CPU time. Everything allocated here is still freed
    by reference counting as usual; only cycle detection waits until the pass ends (the
    collector is process-wide, so it is re-enabled only if it was enabled before).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def normalize(source: Source, entries: Iterable[RawEntry]) -> NormalizedModels:
    """Validate and map every served entry of ``source``; set aside what cannot be used.

    Duplicate ids in one response keep the first occurrence: the catalog key is
    ``(source, model_id)``, and silently letting a later entry win would make the stored
    price depend on list order.
    """
    with cycle_collection_paused():
        return _normalize(source, entries)


def _normalize(source: Source, entries: Iterable[RawEntry]) -> NormalizedModels:
    rows: list[dict[str, Any]] = []
    broken: list[BrokenModel] = []
    skipped: list[SkippedModel] = []
    raws: list[Any] = []
    seen: set[str] = set()
    optional = source.field_columns
    for index, (served_id, raw) in enumerate(entries):
        raws.append(raw)
        label = served_id if isinstance(served_id, str) else None
        if not isinstance(raw, dict):
            skipped.append(SkippedModel(index, label, f"not an object: {type(raw).__name__}"))
            continue
        try:
            model_id = parse_model_id(served_id)
        except ValueError as error:
            skipped.append(SkippedModel(index, label, str(error)))
            continue
        if model_id in seen:
            skipped.append(SkippedModel(index, model_id, "duplicate id; kept the first"))
            continue
        seen.add(model_id)
        problem = _storable_problem(raw)
        if problem:
            broken.append(BrokenModel(index, model_id, problem))
            continue
        kept: list[str] = []
        reason = None
        try:
            model = source.model.model_validate(raw)
        except ValidationError as error:
            fields = _failed_fields(error)
            reason = _describe(error)
            if not fields <= optional.keys():
                broken.append(BrokenModel(index, model_id, reason))
                continue
            # Only optional fields failed: use the rest of the model.
            try:
                model = source.model.model_validate(
                    {key: value for key, value in raw.items() if key not in fields}
                )
            except ValidationError as second:
                broken.append(BrokenModel(index, model_id, _describe(second)))
                continue
            kept = sorted({column for name in fields for column in optional[name]})
        row = source.to_row(model, model_id, raw)
        row["stale_reason"] = reason
        row["kept_columns"] = kept
        rows.append(row)
    return NormalizedModels(
        frame=_frame(rows), broken=broken, skipped=skipped, profile=profile_models(raws)
    )


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    # Column by column with the final dtype: going through pandas' inferred string dtype
    # would turn a missing text value into a float NaN instead of None.
    return pd.DataFrame(
        {
            column: pd.Series([row[column] for row in rows], dtype=dtype)
            for column, dtype in (FRAME_DTYPES | MARK_DTYPES).items()
        }
    )


def normalize_models(models: Iterable[Any], source: Source) -> NormalizedModels:
    """Normalize model objects that carry their id under ``"id"`` (as list envelopes serve
    them) — for callers holding the model list rather than a whole response."""
    return normalize(
        source, ((model.get("id") if isinstance(model, dict) else None, model) for model in models)
    )
