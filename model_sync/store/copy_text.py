"""The frame as PostgreSQL COPY text, built column by column.

Why not ``psycopg``'s ``Copy.write_row``: it picks and calls a dumper for every cell, which at
100,000 models (3.3 million cells, 117 MiB) cost more client time than the server needed to
store the rows. Here each column is converted once with a converter chosen from the catalog's
own column type, rows are joined in C (``str.join``), and the text goes out in chunks, so
memory stays bounded and the server parses one chunk while the next is being built.

The format is COPY's default text format: tab-separated, ``\\N`` for NULL, and backslash,
tab, newline and carriage return escaped with a backslash
(https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import ARRAY, BigInteger, Boolean, DateTime, Integer, Numeric, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

NULL = "\\N"
# Small enough that Postgres parses one chunk while the next is built (at 10,000 models a
# single chunk took twice as long: encode, then send), large enough to amortise the calls.
CHUNK_ROWS = 1_000


def escape(value: str) -> str:
    """``value`` as a COPY text field. ``str.replace`` returns the string itself when there is
    nothing to replace, so the common case costs four scans and no copy."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _with_fragments(value: Any) -> Any:
    """``value`` with each Decimal (a JSON number read from its text, see
    ``sources.base.decode_json``) replaced by the same number text, which orjson writes as is:
    exact, never through a binary float."""
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    if isinstance(value, dict):
        return {key: _with_fragments(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_fragments(item) for item in value]
    return value


def _json_slow(value: Any) -> str:
    """The standard library's JSON with Decimals written as numbers (for integers past 64
    bits, which orjson refuses)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        members = (
            json.dumps(str(key), ensure_ascii=False) + ":" + _json_slow(item)
            for key, item in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_slow(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def json_text(value: Any) -> str:
    """Compact JSON text for a jsonb cell.

    orjson is ~3× faster than the standard library, and the raw models are the bulk of a load.
    Models holding JSON numbers read as Decimals take a second pass; integers past 64 bits
    (which orjson refuses) fall back to the standard library.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        pass
    try:
        return orjson.dumps(_with_fragments(value)).decode()
    except TypeError:
        return _json_slow(value)


def _check_types(column: str, values: list[Any], allowed: tuple[type, ...]) -> None:
    unexpected = {type(value) for value in values} - set(allowed)
    if unexpected:
        names = ", ".join(sorted(kind.__name__ for kind in unexpected))
        raise TypeError(f"column {column!r} holds {names}; expected {allowed[0].__name__}")


def _escaped(values: list[str]) -> list[str]:
    # One scan of the whole column decides; almost no catalog text needs escaping.
    blob = "".join(values)
    if "\\" in blob or "\t" in blob or "\n" in blob or "\r" in blob:
        return [escape(value) for value in values]
    return values


def _text(column: str, values: list[Any]) -> list[str]:
    _check_types(column, values, (str,))
    return _escaped(values)


def _integer(column: str, values: list[Any]) -> list[str]:
    _check_types(column, values, (int,))
    return list(map(str, values))


def _numeric(column: str, values: list[Any]) -> list[str]:
    # Prices are money: Decimals only (never floats). str() is exact ("0.12", "1.5E-7") and
    # PostgreSQL's numeric reads every form it produces.
    _check_types(column, values, (Decimal, int))
    return list(map(str, values))


def _boolean(column: str, values: list[Any]) -> list[str]:
    _check_types(column, values, (bool, np.bool_))
    return ["t" if value else "f" for value in values]


def _timestamp(column: str, values: list[Any]) -> list[str]:
    _check_types(column, values, (pd.Timestamp, datetime))
    if any(value.tzinfo is None for value in values):
        raise TypeError(f"naive timestamp in {column!r}: the catalog stores UTC instants")
    return [value.isoformat() for value in values]


@functools.lru_cache(maxsize=4096)
def _text_array_literal(items: tuple[str, ...]) -> str:
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return escape("{" + ",".join(quoted) + "}")


def _text_array(column: str, values: list[Any]) -> list[str]:
    _check_types(column, values, (list, tuple))
    for value in values:
        _check_types(column, list(value), (str,))
    # Models share a handful of tag sets, so each literal is built once.
    return [_text_array_literal(tuple(value)) for value in values]


def _jsonb(column: str, values: list[Any]) -> list[str]:
    return _escaped([json_text(value) for value in values])


Converter = Callable[[str, list[Any]], list[str]]


def converter_for(column_type: Any) -> Converter:
    """How a column of this SQLAlchemy type becomes COPY text: values (never NULL) in, one
    field per value out."""
    if isinstance(column_type, JSONB):
        return _jsonb
    if isinstance(column_type, ARRAY):
        return _text_array
    if isinstance(column_type, Boolean):
        return _boolean
    if isinstance(column_type, DateTime):
        return _timestamp
    if isinstance(column_type, BigInteger | Integer):
        return _integer
    if isinstance(column_type, Numeric):
        return _numeric
    if isinstance(column_type, Text):
        return _text
    raise TypeError(f"no COPY converter for column type {column_type!r}")


def _timestamps(series: pd.Series) -> list[str]:
    """A datetime64 column rendered in one vectorised call (ISO 8601, UTC)."""
    if series.dt.tz is None:
        if series.notna().any():
            raise TypeError(f"naive timestamps in {series.name!r}: the catalog stores UTC instants")
        return [NULL] * len(series)
    naive = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    rendered = np.datetime_as_string(naive, unit="us").tolist()
    return [NULL if text == "NaT" else text + "Z" for text in rendered]


def column_text(series: pd.Series, convert: Converter) -> list[str]:
    """One column as COPY fields: NULLs as ``\\N``, everything else through ``convert``."""
    if series.dtype.kind == "M":
        return _timestamps(series)
    cells = series.tolist()
    missing = series.isna().tolist()
    if not any(missing):
        return convert(str(series.name), cells)
    present = [value for value, gone in zip(cells, missing, strict=True) if not gone]
    converted = iter(convert(str(series.name), present))
    return [NULL if gone else next(converted) for gone in missing]


def copy_chunks(
    frame: pd.DataFrame,
    table: Table,
    columns: Sequence[str],
    constants: dict[str, Any] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    extra_types: dict[str, Any] | None = None,
) -> Iterator[bytes]:
    """COPY text (UTF-8) for ``frame[columns]`` followed by ``constants`` (the same value in
    every row), ``chunk_rows`` rows at a time. Column types come from ``table`` (or, for
    columns it does not have, ``extra_types``)."""
    types = {**{column.name: column.type for column in table.columns}, **(extra_types or {})}
    converters = [converter_for(types[column]) for column in columns]
    end = (
        "".join(
            "\t" + (NULL if value is None else converter_for(table.c[name].type)(name, [value])[0])
            for name, value in (constants or {}).items()
        )
        + "\n"
    )
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        fields = [
            column_text(chunk[column], convert)
            for column, convert in zip(columns, converters, strict=True)
        ]
        yield (end.join(["\t".join(row) for row in zip(*fields, strict=True)]) + end).encode()
