"""Synthetic Vercel AI Gateway ``/v1/models`` responses of any size, shaped like the real ones.

Nothing is hard-coded about the catalog's shape: every distribution is read, at run time, from
a recorded real response (by default the newest one in ``model_sync_tests/fixtures/vercel``).

* **Field mix, type share, tier share, tag mix**: each synthetic model is a copy of a real
  model (a *template*), so optional keys (``released``, ``tags``, ``*_tiers``, ``web_search``,
  non-token pricing, empty ``pricing``) appear exactly as often, and in the same combinations,
  as in the real response. Templates are drawn in shuffled rounds over the whole real list,
  so the shares are exact up to rounding, not just in expectation.
* **Price ranges**: a model's prices are rescaled so that its primary price (``input``, or
  ``image``, or the first video / image-size price) is the primary price of another real model
  of the same type and price kind (a *donor*). The real within-model structure is kept: output
  vs input ratio, cache discounts, the tier bands, and "flat price == first tier's cost".
* **Ids** stay ``provider/model`` with the template's provider, made unique by a suffix.

``mutate`` derives the next response from one: x % price changes, y % removals, z % new models.
"""

from __future__ import annotations

import csv
import json
import random
import re
import statistics
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "model_sync_tests" / "fixtures" / "vercel"

# Price kinds. A rescale touches only the family of the model's primary price, so for example
# a per-search web_search price is not multiplied by a per-token ratio.
TOKEN_KEYS = frozenset(
    {
        "input",
        "output",
        "input_cache_read",
        "input_cache_write",
        "input_tiers",
        "output_tiers",
        "input_cache_read_tiers",
        "input_cache_write_tiers",
    }
)
PRIMARY_KINDS = (
    ("input", None),
    ("image", None),
    ("video_duration_pricing", "cost_per_second"),
    ("image_dimension_quality_pricing", "cost"),
)
# Label entries inside price lists ("720p", "1024x1024", ...): never prices.
LABEL_KEYS = frozenset({"resolution", "mode", "size", "quality", "audio"})
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_FOUR_DIGITS = Context(prec=4)
_PRICE_CHANGE_FACTORS = tuple(Decimal(f) for f in ("0.5", "0.6", "0.75", "0.8", "1.25", "1.5", "2"))


def newest_fixture(directory: Path = FIXTURES_DIR) -> Path:
    """The most recent recorded response: by ``snapshots.csv`` capture time, else by name."""
    index = directory / "snapshots.csv"
    if index.exists():
        with index.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows:
            return directory / max(rows, key=lambda row: row["captured_at_utc"])["file"]
    files = sorted(directory.glob("models-*.json"))
    if not files:
        raise FileNotFoundError(f"no recorded gateway responses in {directory}")
    return files[-1]


def load_models(path: Path) -> list[dict[str, Any]]:
    payload = json.loads(path.read_bytes())
    return payload["data"]


def _primary(model: dict[str, Any]) -> tuple[str, Decimal] | None:
    pricing = model.get("pricing") or {}
    for key, sub in PRIMARY_KINDS:
        value = pricing.get(key)
        if sub is None and isinstance(value, str):
            return key, Decimal(value)
        if sub is not None and isinstance(value, list) and value and sub in value[0]:
            return key, Decimal(value[0][sub])
    return None


def _scale_text(text: str, factor: Decimal) -> str:
    if not _DECIMAL.fullmatch(text):
        return text
    value = Decimal(text)
    if value.is_zero():
        return text
    scaled = _FOUR_DIGITS.multiply(value, factor).normalize()
    return format(scaled, "f")


def _scale(value: Any, factor: Decimal) -> Any:
    """Every decimal-string price inside ``value`` times ``factor`` (4 significant digits)."""
    if isinstance(value, str):
        return _scale_text(value, factor)
    if isinstance(value, list):
        return [_scale(item, factor) for item in value]
    if isinstance(value, dict):
        return {
            key: item if key in LABEL_KEYS else _scale(item, factor) for key, item in value.items()
        }
    return value


def _scale_family(pricing: dict[str, Any], primary_key: str, factor: Decimal) -> dict[str, Any]:
    family = TOKEN_KEYS if primary_key == "input" else {primary_key}
    return {
        key: _scale(value, factor) if key in family else value for key, value in pricing.items()
    }


def scale_all_prices(pricing: dict[str, Any], factor: Decimal) -> dict[str, Any]:
    return {key: _scale(value, factor) for key, value in pricing.items()}


@dataclass(frozen=True)
class CatalogProfile:
    """What the generator learned from a real response."""

    source: Path
    templates: tuple[str, ...]  # each real model as JSON text (cheap to clone)
    donors: dict[tuple[str | None, str], tuple[Decimal, ...]]

    @classmethod
    def from_fixture(cls, path: Path | None = None) -> CatalogProfile:
        path = path or newest_fixture()
        models = load_models(path)
        donors: dict[tuple[str | None, str], list[Decimal]] = {}
        for model in models:
            primary = _primary(model)
            if primary and not primary[1].is_zero():
                donors.setdefault((model.get("type"), primary[0]), []).append(primary[1])
        return cls(
            source=path,
            templates=tuple(json.dumps(model) for model in models),
            donors={key: tuple(values) for key, values in donors.items()},
        )

    def _template_order(self, rng: random.Random) -> Iterator[int]:
        while True:
            order = list(range(len(self.templates)))
            rng.shuffle(order)
            yield from order

    def _synthesize(self, template_json: str, tag: str, rng: random.Random) -> dict[str, Any]:
        model = json.loads(template_json)
        real_id = model["id"]
        provider, _, slug = real_id.partition("/")
        model["id"] = f"{provider}/{slug}-{tag}"
        if isinstance(model.get("name"), str):
            model["name"] = f"{model['name']} {tag}"
        pricing = model.get("pricing")
        primary = _primary(model)
        if pricing and primary and not primary[1].is_zero():
            candidates = self.donors.get((model.get("type"), primary[0]))
            if candidates:
                factor = rng.choice(candidates) / primary[1]
                model["pricing"] = _scale_family(pricing, primary[0], factor)
        return model

    def generate(self, count: int, seed: int = 0, id_tag: str = "syn") -> list[dict[str, Any]]:
        """``count`` models with unique ids, sorted by id like the real response."""
        rng = random.Random(seed)
        order = self._template_order(rng)
        models = [
            self._synthesize(self.templates[next(order)], f"{id_tag}{index:07d}", rng)
            for index in range(count)
        ]
        models.sort(key=lambda model: model["id"])
        return models


@dataclass(frozen=True)
class MutationSummary:
    price_changed: int
    removed: int
    added: int


def _has_paid_price(model: dict[str, Any]) -> bool:
    def paid(value: Any) -> bool:
        if isinstance(value, str):
            return bool(_DECIMAL.fullmatch(value)) and not Decimal(value).is_zero()
        if isinstance(value, list):
            return any(paid(item) for item in value)
        if isinstance(value, dict):
            return any(paid(item) for key, item in value.items() if key not in LABEL_KEYS)
        return False

    return paid(model.get("pricing") or {})


def mutate(
    models: Sequence[dict[str, Any]],
    profile: CatalogProfile,
    *,
    price_share: float = 0.0,
    remove_share: float = 0.0,
    new_share: float = 0.0,
    seed: int = 1,
) -> tuple[list[dict[str, Any]], MutationSummary]:
    """The next response: shares are of ``len(models)``; unchanged models are shared, not copied.

    A price change multiplies every price of a model by one factor between 0.5 and 2 (never
    1): a real, consistent repricing that stays below the anomaly guard's warn factor (3x).
    Removed models are chosen among those whose price did not change.
    """
    rng = random.Random(seed)
    count = len(models)
    paid = [index for index, model in enumerate(models) if _has_paid_price(model)]
    changed = set(rng.sample(paid, min(len(paid), round(price_share * count))))
    rest = [index for index in range(count) if index not in changed]
    removed = set(rng.sample(rest, min(len(rest), round(remove_share * count))))
    result: list[dict[str, Any]] = []
    for index, model in enumerate(models):
        if index in removed:
            continue
        if index in changed:
            model = dict(model)
            model["pricing"] = scale_all_prices(model["pricing"], rng.choice(_PRICE_CHANGE_FACTORS))
        result.append(model)
    added = profile.generate(round(new_share * count), seed=seed, id_tag=f"new{seed}-")
    result.extend(added)
    result.sort(key=lambda model: model["id"])
    return result, MutationSummary(len(changed), len(removed), len(added))


def describe(models: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Shape statistics, to show that a synthetic response looks like the real one."""
    count = len(models)
    types = Counter(model.get("type") for model in models)
    tagged = Counter(
        ",".join(sorted(model["tags"])) if "tags" in model else "<no tags key>" for model in models
    )
    input_prices = sorted(
        Decimal(model["pricing"]["input"])
        for model in models
        if model.get("type") == "language"
        and isinstance(model.get("pricing", {}).get("input"), str)
    )
    return {
        "models": count,
        "type_share": {key or "none": value / count for key, value in types.most_common()},
        "tiered_share": sum(
            any(key.endswith("_tiers") for key in model.get("pricing") or {}) for model in models
        )
        / count,
        "released_share": sum("released" in model for model in models) / count,
        "empty_pricing_share": sum(model.get("pricing") == {} for model in models) / count,
        "web_search_share": sum("web_search" in (model.get("pricing") or {}) for model in models)
        / count,
        "top_tag_sets": [(key or "[]", value / count) for key, value in tagged.most_common(4)],
        "language_input_per_token": (
            (input_prices[0], statistics.median(input_prices), input_prices[-1])
            if input_prices
            else None
        ),
        "mean_json_bytes": statistics.fmean(len(json.dumps(model)) for model in models),
    }
