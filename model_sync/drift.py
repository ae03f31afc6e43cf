"""Schema drift: the key paths and value types a response uses, and how they moved. Pure.

Upstream catalogs change shape every few weeks (a date served in milliseconds, a price turned
from a string into a number, a new nested price kind). The transform absorbs what it can; this
module makes sure nobody has to notice by luck. A *profile* maps every key path found in the
served models — ``pricing.input``, ``pricing.regional.eu.input``, ``pricing.input_tiers[].cost``
(array elements as ``[]``) — to the JSON types seen there. Comparing the profile of a response
with the previous successful sync's says which paths are new, which vanished, and which
changed type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from model_sync.sources.base import storable_text

SchemaProfile = dict[str, list[str]]
# A response whose models hold more distinct paths than this (a dict keyed by data, say) is
# profiled up to the cap; the marker path says so instead of storing an unbounded profile.
MAX_PATHS = 5_000
TRUNCATED = "…"
# Nested values are profiled this many levels deep (real catalogs nest four); below that, the
# path's type says "object" or "array" and the walk stops, so a hostile nesting depth costs
# neither a RecursionError nor a profile line per level.
MAX_DEPTH = 32

_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    Decimal: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
    list: "array",
}


def profile_models(models: Iterable[Any]) -> SchemaProfile:
    """Every key path of the served models (relative to each model) with its value types.

    Models of one catalog share a handful of shapes, so the work is per distinct shape, not
    per value: for each object, its keys and the types of its values (both built in C) are
    looked up once; only a shape not seen before at that path is noted key by key, and only
    the nested objects and lists are walked further.
    """
    seen: dict[str, set[str]] = {}
    # (path, keys, value types) → [(child path, child value position, is dict)] to descend into
    shapes: dict[tuple, list[tuple[str, int, bool]]] = {}
    list_shapes: set[tuple] = set()

    def note(path: str, kind: type) -> None:
        name = _TYPE_NAMES.get(kind) or _TYPE_NAMES.get(_base_type(kind), kind.__name__)
        types = seen.get(path)
        if types is None:
            if len(seen) >= MAX_PATHS:
                seen.setdefault(TRUNCATED, set()).add("truncated")
                return
            seen[path] = {name}
        else:
            types.add(name)

    def walk_dict(value: dict, path: str, depth: int) -> None:
        kinds = tuple(map(type, value.values()))
        key = (path, tuple(value), kinds)
        children = shapes.get(key)
        if children is None:
            children = []
            prefix = f"{path}." if path else ""
            for position, (name, kind) in enumerate(zip(value, kinds, strict=True)):
                child = prefix + str(name)
                note(child, kind)
                if kind is dict or kind is list:
                    children.append((child, position, kind is dict))
            shapes[key] = children
        if children and depth < MAX_DEPTH:
            values = list(value.values())
            for child, position, is_dict in children:
                if is_dict:
                    walk_dict(values[position], child, depth + 1)
                else:
                    walk_list(values[position], child + "[]", depth + 1)

    def walk_list(items: list, path: str, depth: int) -> None:
        kinds = frozenset(map(type, items))
        if (path, kinds) not in list_shapes:
            list_shapes.add((path, kinds))
            for kind in kinds:
                note(path, kind)
        if (dict in kinds or list in kinds) and depth < MAX_DEPTH:
            for item in items:
                kind = type(item)
                if kind is dict:
                    walk_dict(item, path, depth + 1)
                elif kind is list:
                    walk_list(item, path + "[]", depth + 1)

    for model in models:
        if type(model) is dict:
            walk_dict(model, "", 0)
    # The profile is stored with the run: a key Postgres cannot hold (NUL, a lone surrogate)
    # is written escaped, as the report of the model it came from is.
    profile: dict[str, set[str]] = {}
    for path, types in seen.items():
        profile.setdefault(storable_text(path), set()).update(types)
    return {path: sorted(types) for path, types in sorted(profile.items())}


def _base_type(kind: type) -> type:
    for base in kind.__mro__:
        if base in _TYPE_NAMES:
            return base
    return kind


@dataclass(frozen=True)
class TypeChange:
    path: str
    old: list[str]
    new: list[str]


@dataclass(frozen=True)
class SchemaDrift:
    """How a response's shape differs from the previous successful sync's."""

    new_paths: dict[str, list[str]] = field(default_factory=dict)
    vanished_paths: dict[str, list[str]] = field(default_factory=dict)
    type_changes: list[TypeChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new_paths or self.vanished_paths or self.type_changes)

    @property
    def count(self) -> int:
        return len(self.new_paths) + len(self.vanished_paths) + len(self.type_changes)

    def lines(self) -> list[str]:
        """One line per drifted path, for the run log."""
        return (
            [f"new path {path} ({'/'.join(t)})" for path, t in self.new_paths.items()]
            + [
                f"vanished path {path} (was {'/'.join(t)})"
                for path, t in self.vanished_paths.items()
            ]
            + [
                f"type of {c.path} changed from {'/'.join(c.old)} to {'/'.join(c.new)}"
                for c in self.type_changes
            ]
        )

    def rows(self) -> list[dict[str, str]]:
        """One row per drifted path: path, change, old types, new types."""
        return (
            [
                {"path": p, "change": "new", "old": "", "new": "/".join(t)}
                for p, t in self.new_paths.items()
            ]
            + [
                {"path": p, "change": "vanished", "old": "/".join(t), "new": ""}
                for p, t in self.vanished_paths.items()
            ]
            + [
                {"path": c.path, "change": "type", "old": "/".join(c.old), "new": "/".join(c.new)}
                for c in self.type_changes
            ]
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "new_paths": self.new_paths,
            "vanished_paths": self.vanished_paths,
            "type_changes": [
                {"path": c.path, "old": c.old, "new": c.new} for c in self.type_changes
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SchemaDrift:
        if not data:
            return cls()
        return cls(
            new_paths=dict(data.get("new_paths") or {}),
            vanished_paths=dict(data.get("vanished_paths") or {}),
            type_changes=[TypeChange(**c) for c in data.get("type_changes") or []],
        )


def compare_profiles(
    previous: Mapping[str, list[str]] | None, current: SchemaProfile
) -> SchemaDrift:
    """The drift from ``previous`` to ``current``; no previous profile is a baseline (none)."""
    if previous is None:
        return SchemaDrift()
    return SchemaDrift(
        new_paths={p: t for p, t in current.items() if p not in previous},
        vanished_paths={p: list(t) for p, t in previous.items() if p not in current},
        type_changes=[
            TypeChange(p, list(previous[p]), t)
            for p, t in current.items()
            if p in previous and sorted(previous[p]) != t
        ],
    )
