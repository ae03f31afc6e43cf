"""Raw gateway models → one normalized pandas frame. Pure: plain data in, frame out, no I/O.

A gateway that serves one broken model must not stop the catalog from learning about the
other three hundred, so validation is per model: a bad model is skipped with a reason
(reported as ``failed``) and everything else goes on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from model_sync.sources import vercel

# The frame's columns, in order, with their pandas dtypes. Integers and flags use pandas'
# nullable dtypes so a missing value stays missing instead of turning the column into floats;
# prices stay Python Decimals (object) so no digit is ever rounded.
FRAME_DTYPES: dict[str, str] = {
    "source": "object",
    "model_id": "object",
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


@dataclass(frozen=True)
class GatewaySource:
    """How one gateway's models are validated and mapped to catalog rows."""

    name: str
    model: type[BaseModel]
    to_row: Callable[[Any, dict[str, Any]], dict[str, Any]]


SOURCES: dict[str, GatewaySource] = {
    vercel.SOURCE: GatewaySource(vercel.SOURCE, vercel.VercelModel, vercel.catalog_row),
}


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates escaped, so a report about a bad model can itself
    be logged and stored."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class SkippedModel:
    """A served model that is not in the frame, and why. The id is verbatim; use
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


@dataclass(frozen=True)
class NormalizedCatalog:
    """The transform's result: valid models as a frame, the rest as reasons."""

    frame: pd.DataFrame
    skipped: list[SkippedModel] = field(default_factory=list)


def _unstorable_value(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds what Postgres cannot store, if anywhere.

    Postgres ``text`` and ``jsonb`` refuse U+0000 and invalid UTF-8, and ``jsonb`` refuses
    NaN and infinities (which Python's JSON parser lets through); one such value would abort
    the whole write transaction, so the model carrying it is skipped up front.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path or 'value'} is not a finite number ({value!r})"
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path or 'value'} contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path or 'value'} contains invalid unicode (a lone surrogate)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _unstorable_value(key, f"{path}.<key>") or _unstorable_value(
                item, f"{path}.{key}" if path else str(key)
            )
            if problem:
                return problem
    elif isinstance(value, list):
        for position, item in enumerate(value):
            problem = _unstorable_value(item, f"{path}[{position}]")
            if problem:
                return problem
    return None


def _storable_problem(raw: dict[str, Any]) -> str | None:
    """The fast check behind :func:`_unstorable_value`: one C-speed serialization per model.

    Only when it finds something is the model walked, to name the field.
    """
    try:
        text = json.dumps(raw, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except RecursionError:
        return "nested too deeply to store"
    except (ValueError, UnicodeEncodeError):
        return _unstorable_value(raw) or "holds a value Postgres cannot store"
    # NUL is escaped as \u0000; the walk tells a real NUL from a literal backslash-u text.
    return _unstorable_value(raw) if "\\u0000" in text else None


def _describe(error: ValidationError) -> str:
    """A one-line reason naming each failing field, e.g. ``pricing.input: price is negative``."""
    parts = []
    for detail in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in detail["loc"]) or "model"
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def _model_id_of(raw: Any) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        return raw["id"]
    return None


def normalize_models(raw_models: Sequence[Any], source: str = vercel.SOURCE) -> NormalizedCatalog:
    """Validate and map every served model; collect the ones that cannot be used.

    Duplicate ids in one response keep the first occurrence: the catalog key is
    ``(source, model_id)``, and silently letting a later entry win would make the stored
    price depend on list order.
    """
    gateway = SOURCES[source]
    rows: list[dict[str, Any]] = []
    skipped: list[SkippedModel] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_models):
        model_id = _model_id_of(raw)
        if not isinstance(raw, dict):
            skipped.append(SkippedModel(index, None, f"not an object: {type(raw).__name__}"))
            continue
        if model_id is None or not model_id.strip():
            skipped.append(SkippedModel(index, model_id, "missing or empty id"))
            continue
        if model_id in seen:
            skipped.append(SkippedModel(index, model_id, "duplicate id; kept the first"))
            continue
        problem = _storable_problem(raw)
        if problem:
            skipped.append(SkippedModel(index, model_id, problem))
            continue
        try:
            model = gateway.model.model_validate(raw)
        except ValidationError as error:
            skipped.append(SkippedModel(index, model_id, _describe(error)))
            continue
        seen.add(model_id)
        rows.append(gateway.to_row(model, raw))
    # Column by column with the final dtype: going through pandas' inferred string dtype
    # would turn a missing text value into a float NaN instead of None.
    frame = pd.DataFrame(
        {
            column: pd.Series([row[column] for row in rows], dtype=dtype)
            for column, dtype in FRAME_DTYPES.items()
        }
    )
    return NormalizedCatalog(frame=frame, skipped=skipped)
