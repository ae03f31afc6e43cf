"""Model-based test of the catalog lifecycle: random snapshot sequences against a reference.

The per-feature tests in test_sync.py and test_history.py replay the recorded snapshots, which
change in only the ways the real gateway happened to change. Here hypothesis drives a
state machine through random sequences of gateway snapshots — models added, removed and
returning, prices moving inside the warn/fail thresholds and sometimes beyond them, broken and
duplicate entries, a catalog that collapses or comes back empty — with random user edits of
``is_recommended`` and ``priority`` in between. Every snapshot is normalized and written with
the real ``sync_catalog`` into a real Postgres, and after EVERY step the database is compared
with a plain in-memory reference of what ``ai_models`` must hold: the active and inactive
sets, each model's prices and raw JSON, the user columns, one open history version per model,
and the counts the sync reports. A refused sync (empty catalog, more than half of the active
models gone, an unaccepted anomalous price) must leave ``ai_models`` exactly as it was, and a
successful one must not rewrite rows it did not change.

The reference is written from the README's rules, not from the SQL: a model is "updated" when
its served JSON differs from the stored one, and a price move is anomalous when a paid price
drops to 0 or moves by more than 10x either way (10x exactly is allowed).

Default: 20 machines of up to 40 steps (several hundred syncs, well under a minute).
``HYPOTHESIS_PROFILE=thorough`` runs 250 machines of up to 50 steps.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine

from model_sync.store.sync import SyncRefused, SyncRequest, sync_catalog
from model_sync.transform import normalize_models
from model_sync_tests.snapshots import snapshot_models, vercel_snapshots

SOURCE = "vercel"
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
MACHINE_SETTINGS = settings(
    max_examples=250 if THOROUGH else 20,
    stateful_step_count=50 if THOROUGH else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Served price key → stored column, and whether the stored value is per 1M tokens.
PRICES = {
    "input": ("cost_per_1m_input", True),
    "output": ("cost_per_1m_output", True),
    "input_cache_read": ("cost_per_1m_cache_read", True),
    "input_cache_write": ("cost_per_1m_cache_write", True),
    "web_search": ("web_search_cost", False),
}
PRICE_COLUMNS = tuple(column for column, _ in PRICES.values())
FAIL_FACTOR = Decimal(10)

# Multipliers the README calls ordinary (up to 3x silent, up to 10x a warning) and the ones
# it refuses (beyond 10x either way). The boundaries 10 and 0.1 belong to the allowed side.
WITHIN_LIMITS = ["0.1", "0.25", "0.5", "0.9", "1.1", "2", "3", "3.5", "5", "10"]
ANOMALOUS = ["0.09", "0.01", "11", "100", "0"]


def _pool() -> dict[str, dict[str, Any]]:
    """Base models: one real model per pricing shape, plus a variant id of each at 2x prices.

    A shape is the set of pricing keys (flat, tiered, web search, image-only, empty...), so
    every branch of the price mapping takes part. A real 2025 model priced at "0" covers
    free prices becoming paid.
    """
    latest = snapshot_models(vercel_snapshots()[-1][0])
    by_shape: dict[tuple[str, ...], dict[str, Any]] = {}
    for model in sorted(latest, key=lambda m: m["id"]):
        by_shape.setdefault(tuple(sorted(model.get("pricing") or {})), model)
    free = next(
        model
        for name, _ in vercel_snapshots()
        for model in snapshot_models(name)
        if "0" in (model.get("pricing") or {}).values()
    )
    pool = {}
    for model in [*by_shape.values(), free]:
        pool[model["id"]] = model
        variant = copy.deepcopy(model)
        variant["id"] = f"{model['id']}-mb2"
        for key in PRICES:
            value = (variant.get("pricing") or {}).get(key)
            if isinstance(value, str):
                variant["pricing"][key] = format(Decimal(value) * 2, "f")
        pool[variant["id"]] = variant
    return pool


POOL = _pool()
POOL_IDS = sorted(POOL)


# --- the reference ---------------------------------------------------------------------


def base_price_text(pricing: dict[str, Any], key: str) -> str | None:
    """The served text a column comes from: the flat key, else the first tier's cost."""
    if key in pricing:
        return pricing[key]
    tiers = pricing.get(f"{key}_tiers")
    return tiers[0]["cost"] if tiers else None


def expected_prices(raw: dict[str, Any]) -> dict[str, Decimal | None]:
    """Stored price per column, by value: per-token text x 1,000,000 (web search as served)."""
    pricing = raw.get("pricing") or {}
    prices = {}
    for key, (column, per_million) in PRICES.items():
        text = base_price_text(pricing, key) if key != "web_search" else pricing.get(key)
        prices[column] = None if text is None else Decimal(text) * (10**6 if per_million else 1)
    return prices


def anomalous(old: Decimal | None, new: Decimal | None) -> bool:
    """README: a paid price dropping to 0, or a move of more than 10x either way."""
    if old is None or new is None or old == 0:
        return False
    return new == 0 or new / old > FAIL_FACTOR or old / new > FAIL_FACTOR


@dataclass
class Stored:
    """What ai_models must hold for one model."""

    raw: dict[str, Any]
    active: bool
    is_recommended: bool = False
    priority: int = 0


@dataclass(frozen=True)
class Expected:
    """What one sync must do, predicted from the reference before it runs."""

    refused: str | None  # the message fragment of the guard that must trip
    created: frozenset[str] = frozenset()
    updated: frozenset[str] = frozenset()
    reactivated: frozenset[str] = frozenset()
    deactivated: frozenset[str] = frozenset()
    total: int = 0
    failed: int = 0


def breakers() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    """Ways to make a served model invalid while keeping its id (test_transform pins each)."""

    def price(key: str, value: str) -> Callable[[dict[str, Any]], None]:
        def apply(model: dict[str, Any]) -> None:
            model["pricing"] = {**(model.get("pricing") or {}), key: value}

        return apply

    return [
        ("input-nan", price("input", "NaN")),
        ("output-negative", price("output", "-0.000001")),
        ("context-text", lambda m: m.__setitem__("context_window", "big")),
        ("tags-string", lambda m: m.__setitem__("tags", "vision")),
        ("created-text", lambda m: m.__setitem__("created", "yesterday")),
        ("description-nul", lambda m: m.__setitem__("description", "bad\x00text")),
    ]


BREAKERS = breakers()
NOT_MODELS = ["junk", None, 42, ["openai/gpt-5"], {"pricing": {}}, {"id": "   "}]
OPERATIONS = [
    "add",
    "add",
    "remove",
    "return",
    "return",
    "price",
    "price",
    "price",
    "anomaly",
    "bad",
    "bad",
    "duplicate",
    "mass_removal",
    "empty",
]


class CatalogMachine(RuleBasedStateMachine):
    """Gateway snapshots and user edits against a real database and an in-memory reference."""

    def __init__(self, engine: Engine, db: psycopg.Connection, stats: Counter[str]) -> None:
        super().__init__()
        self.engine = engine
        self.db = db
        self.stats = stats
        # Each machine starts from an empty catalog; TRUNCATE is far cheaper than a new database.
        db.execute(
            "TRUNCATE ai_models, ai_model_versions, ai_model_changes, webhook_outbox, "
            "model_sync_runs RESTART IDENTITY CASCADE"
        )
        self.served: dict[str, dict[str, Any]] = {}  # the last snapshot that was written
        self.stored: dict[str, Stored] = {}
        stats["machines"] += 1

    # --- building a snapshot --------------------------------------------------------------

    def _absent_pool_ids(self, served: dict[str, Any], stored_too: bool) -> list[str]:
        return [
            model_id
            for model_id in POOL_IDS
            if model_id not in served and (model_id in self.stored) == stored_too
        ]

    def _returnable(self, served: dict[str, Any]) -> list[str]:
        return sorted(i for i, s in self.stored.items() if not s.active and i not in served)

    def _move_price(self, data: st.DataObject, served: dict[str, Any], factors: list[str]) -> None:
        priced = [
            (model_id, key)
            for model_id, raw in served.items()
            for key in PRICES
            if isinstance((raw.get("pricing") or {}).get(key), str)
        ]
        if not priced:
            return
        model_id, key = data.draw(st.sampled_from(priced), label="price field")
        raw = copy.deepcopy(served[model_id])
        old = Decimal(raw["pricing"][key])
        factor = Decimal(data.draw(st.sampled_from(factors), label="factor"))
        # A free price can only become paid (a warning, never refused).
        new = Decimal("0.000001") if old == 0 and factor != 0 else old * factor
        if new > 1:  # keep prices plausible (and far below parse_price's upper bound)
            return
        raw["pricing"][key] = format(new, "f")
        served[model_id] = raw

    def _apply(
        self,
        operation: str,
        data: st.DataObject,
        served: dict[str, dict[str, Any]],
        noise: list[Any],
        tail: list[Any],
    ) -> None:
        """One gateway change: ``served`` holds the valid models, ``noise``/``tail`` the rest."""
        if operation == "add":
            candidates = self._absent_pool_ids(served, stored_too=False)
            if candidates:
                model_id = data.draw(st.sampled_from(candidates), label="add")
                served[model_id] = copy.deepcopy(POOL[model_id])
        elif operation == "return":
            candidates = self._returnable(served)
            if candidates:
                model_id = data.draw(st.sampled_from(candidates), label="return")
                served[model_id] = copy.deepcopy(self.stored[model_id].raw)
        elif operation == "remove" and served:
            for model_id in data.draw(
                st.lists(st.sampled_from(sorted(served)), min_size=1, max_size=3, unique=True),
                label="remove",
            ):
                served.pop(model_id)
        elif operation == "mass_removal" and served:
            keep = data.draw(st.integers(0, len(served) // 2), label="keep")
            for model_id in sorted(served)[keep:]:
                served.pop(model_id)
        elif operation == "price":
            self._move_price(data, served, WITHIN_LIMITS)
        elif operation == "anomaly":
            self._move_price(data, served, ANOMALOUS)
        elif operation == "bad":
            self._add_bad_entry(data, served, noise)
        elif operation == "duplicate" and served:
            model_id = data.draw(st.sampled_from(sorted(served)), label="duplicate")
            twin = copy.deepcopy(served[model_id])
            twin["description"] = "a later entry with the same id"
            tail.append(twin)  # after the original, so the original wins
        elif operation == "empty":
            served.clear()

    def _add_bad_entry(
        self, data: st.DataObject, served: dict[str, dict[str, Any]], noise: list[Any]
    ) -> None:
        kind = data.draw(st.sampled_from(["served", "new", "not-a-model"]), label="bad kind")
        if kind == "not-a-model":
            noise.append(copy.deepcopy(data.draw(st.sampled_from(NOT_MODELS), label="junk")))
            return
        if kind == "served" and served:
            # The gateway breaks a model it serves: it is skipped, hence missing this time.
            model_id = data.draw(st.sampled_from(sorted(served)), label="break")
            model = served.pop(model_id)
        else:
            model_id = data.draw(st.sampled_from(POOL_IDS), label="break new")
            if model_id in served:
                return
            model = copy.deepcopy(POOL[model_id])
        _, breaker = data.draw(st.sampled_from(BREAKERS), label="breaker")
        broken = copy.deepcopy(model)
        breaker(broken)
        noise.append(broken)

    # --- the reference's prediction ----------------------------------------------------------

    def _expect(self, served: dict[str, dict[str, Any]], failed: int, accept: bool) -> Expected:
        frame_ids = set(served)
        if not frame_ids:
            return Expected(refused="no valid models")
        active = {i for i, s in self.stored.items() if s.active}
        missing = active - frame_ids
        if active and 2 * len(missing) > len(active):
            return Expected(refused="refusing to deactivate")
        for model_id in frame_ids & set(self.stored):
            old, new = expected_prices(self.stored[model_id].raw), expected_prices(served[model_id])
            if not accept and any(anomalous(old[c], new[c]) for c in PRICE_COLUMNS):
                return Expected(refused="implausible price change")
        return Expected(
            refused=None,
            created=frozenset(frame_ids - set(self.stored)),
            updated=frozenset(i for i in frame_ids & active if self.stored[i].raw != served[i]),
            reactivated=frozenset(frame_ids & (set(self.stored) - active)),
            deactivated=frozenset(missing),
            total=len(frame_ids),
            failed=failed,
        )

    # --- rules ---------------------------------------------------------------------------

    @initialize(data=st.data())
    def first_snapshot(self, data: st.DataObject) -> None:
        """Start from a real-looking catalog of 4 to 20 pool models."""
        ids = data.draw(
            st.lists(st.sampled_from(POOL_IDS), min_size=4, max_size=20, unique=True),
            label="initial",
        )
        served = {i: copy.deepcopy(POOL[i]) for i in ids}
        self._sync(served, list(served.values()), failed=0, accept=False)

    # Three snapshot rules against one edit rule, so most steps are syncs.
    @rule(data=st.data())
    def quiet_snapshot(self, data: st.DataObject) -> None:
        """The gateway serves the same catalog, or with one change."""
        self._snapshot(data, max_operations=1)

    @rule(data=st.data())
    def next_snapshot(self, data: st.DataObject) -> None:
        """The gateway serves a new snapshot: a few random changes to the last written one."""
        self._snapshot(data, max_operations=3)

    @rule(data=st.data())
    def busy_snapshot(self, data: st.DataObject) -> None:
        """Many changes at once, where guards and compounding price moves meet."""
        self._snapshot(data, max_operations=8)

    def _snapshot(self, data: st.DataObject, max_operations: int) -> None:
        served = copy.deepcopy(self.served)
        noise: list[Any] = []
        tail: list[Any] = []
        for operation in data.draw(
            st.lists(st.sampled_from(OPERATIONS), max_size=max_operations), label="operations"
        ):
            self._apply(operation, data, served, noise, tail)
        # A twin whose original a later operation removed would itself be the first occurrence.
        tail = [twin for twin in tail if twin["id"] in served]
        accept = data.draw(st.sampled_from([False, False, False, True]), label="accept")
        order = data.draw(st.permutations(sorted(served)), label="order")
        served = {model_id: served[model_id] for model_id in order}
        entries: list[Any] = list(served.values())
        for entry in noise:
            entries.insert(data.draw(st.integers(0, len(entries)), label="position"), entry)
        self._sync(served, entries + tail, failed=len(noise) + len(tail), accept=accept)

    @precondition(lambda self: bool(self.stored))
    @rule(data=st.data())
    def user_edit(self, data: st.DataObject) -> None:
        """Someone sets the user-owned columns; no later sync may touch them."""
        model_id = data.draw(st.sampled_from(sorted(self.stored)), label="edit")
        recommended = data.draw(st.booleans(), label="is_recommended")
        priority = data.draw(st.integers(-(2**31), 2**31 - 1), label="priority")
        self.db.execute(
            "UPDATE ai_models SET is_recommended = %s, priority = %s "
            "WHERE source = %s AND model_id = %s",
            (recommended, priority, SOURCE, model_id),
        )
        self.stored[model_id].is_recommended = recommended
        self.stored[model_id].priority = priority
        self.stats["user edits"] += 1

    # --- one sync and its checks ---------------------------------------------------------

    def _sync(
        self,
        served: dict[str, dict[str, Any]],
        entries: list[Any],
        failed: int,
        accept: bool,
    ) -> None:
        """Normalize and write one snapshot; check the outcome against the reference."""
        catalog = normalize_models(entries)
        # The generator knows which entries are valid; the transform must agree.
        assert list(catalog.frame["model_id"]) == list(served)
        assert len(catalog.skipped) == failed, [s.reason for s in catalog.skipped]

        expected = self._expect(served, failed, accept)
        before = self._table_snapshot()
        run_id = f"mb-{uuid.uuid4()}"
        request = SyncRequest(
            frame=catalog.frame,
            source=SOURCE,
            run_id=run_id,
            skipped=[s.as_record() for s in catalog.skipped],
            accepted_by="model-based test" if accept else None,
            accept_reason="accepting a flagged price on purpose" if accept else None,
        )
        try:
            result = sync_catalog(self.engine, request, datetime.now(UTC))
        except SyncRefused as refusal:
            assert expected.refused is not None, f"refused unexpectedly: {refusal}"
            assert expected.refused in str(refusal), f"wrong guard: {refusal}"
            assert self._table_snapshot() == before, "a refused sync changed the database"
            self.stats[f"refused: {expected.refused}"] += 1
            return
        assert expected.refused is None, f"expected a refusal ({expected.refused})"

        counts = result.counts
        assert set(result.created) == expected.created
        assert set(result.updated) == expected.updated
        assert set(result.reactivated) == expected.reactivated
        assert set(result.deactivated) == expected.deactivated
        changed = len(expected.created) + len(expected.updated) + len(expected.reactivated)
        assert counts.as_dict() == {
            "total": expected.total,
            "created": len(expected.created),
            "updated": len(expected.updated),
            "unchanged": expected.total - changed,
            "deactivated": len(expected.deactivated),
            "reactivated": len(expected.reactivated),
            "failed": expected.failed,
        }
        for change in ("created", "reactivated", "deactivated"):
            assert result.change_counts.get(change, 0) == len(getattr(expected, change))

        # Rows the sync did not change are not rewritten (same updated_at, same run id).
        untouched = set(before["ai_models"]) - (
            expected.created | expected.updated | expected.reactivated | expected.deactivated
        )
        after = self._table_snapshot()
        for model_id in untouched:
            assert after["ai_models"][model_id] == before["ai_models"][model_id], model_id
        # Exactly the changed rows carry this run's id, and none forgets when it was first seen.
        changed_ids = {
            row[0]
            for row in self.db.execute(
                "SELECT model_id FROM ai_models WHERE last_changed_run_id = %s", (run_id,)
            )
        }
        assert changed_ids == (
            expected.created | expected.updated | expected.reactivated | expected.deactivated
        )
        for model_id, first_seen in before["first_seen_at"].items():
            assert after["first_seen_at"][model_id] == first_seen, model_id

        for model_id in served:
            previous = self.stored.get(model_id)
            self.stored[model_id] = Stored(
                raw=copy.deepcopy(served[model_id]),
                active=True,
                is_recommended=previous.is_recommended if previous else False,
                priority=previous.priority if previous else 0,
            )
        for model_id in expected.deactivated:
            self.stored[model_id].active = False
        self.served = served
        assert (result.active_models, result.inactive_models) == (
            sum(s.active for s in self.stored.values()),
            sum(not s.active for s in self.stored.values()),
        )
        self.stats["successful syncs"] += 1
        for change in ("created", "updated", "reactivated", "deactivated"):
            self.stats[change] += len(getattr(expected, change))
        self.stats["failed (skipped) entries"] += expected.failed
        self.stats["accepted anomalies"] += len(result.accepted)

    def _table_snapshot(self) -> dict[str, Any]:
        """Every column of every catalog row, plus the row counts of the sync's other tables."""
        rows = self.db.execute(
            "SELECT model_id, m::text FROM ai_models m WHERE source = %s", (SOURCE,)
        ).fetchall()
        counts = self.db.execute(
            "SELECT (SELECT count(*) FROM ai_model_versions), (SELECT count(*) FROM "
            "ai_model_changes), (SELECT count(*) FROM model_sync_runs), (SELECT count(*) FROM "
            "webhook_outbox)"
        ).fetchone()
        first_seen = self.db.execute(
            "SELECT model_id, first_seen_at FROM ai_models WHERE source = %s", (SOURCE,)
        ).fetchall()
        return {"ai_models": dict(rows), "first_seen_at": dict(first_seen), "counts": counts}

    @invariant()
    def database_matches_the_reference(self) -> None:
        """After every step: the rows, their state, prices, raw JSON and user columns."""
        self.stats["steps checked"] += 1
        rows = self.db.execute(
            "SELECT model_id, is_active, deactivated_at IS NULL, is_recommended, priority, raw, "
            + ", ".join(PRICE_COLUMNS)
            + " FROM ai_models WHERE source = %s",
            (SOURCE,),
        ).fetchall()
        actual = {
            model_id: (
                active,
                not_deactivated,
                recommended,
                priority,
                raw,
                dict(zip(PRICE_COLUMNS, prices, strict=True)),
            )
            for model_id, active, not_deactivated, recommended, priority, raw, *prices in rows
        }
        expected = {
            model_id: (
                s.active,
                s.active,
                s.is_recommended,
                s.priority,
                s.raw,
                expected_prices(s.raw),
            )
            for model_id, s in self.stored.items()
        }
        assert actual.keys() == expected.keys()
        for model_id, row in expected.items():
            assert actual[model_id] == row, model_id
        # The history has exactly one open version per model, in the model's current state.
        open_versions = dict(
            self.db.execute(
                "SELECT model_id, is_active FROM ai_model_versions "
                "WHERE source = %s AND valid_to IS NULL",
                (SOURCE,),
            ).fetchall()
        )
        assert open_versions == {model_id: s.active for model_id, s in self.stored.items()}


@pytest.mark.timeout(3_600 if THOROUGH else 300)
def test_random_snapshot_sequences_match_the_reference(
    engine: Engine, db: psycopg.Connection
) -> None:
    """Hundreds of syncs of random snapshots, each checked against the in-memory reference.

    Proves, per step: created/updated/unchanged/deactivated/reactivated/failed counts and id
    lists; active, inactive, prices, raw JSON and user columns of every row; one open history
    version per model; refused syncs change nothing; unchanged rows are not rewritten.
    """
    stats: Counter[str] = Counter()
    run_state_machine_as_test(lambda: CatalogMachine(engine, db, stats), settings=MACHINE_SETTINGS)
    syncs = stats["successful syncs"] + sum(v for k, v in stats.items() if k.startswith("refused"))
    print(f"\nmodel-based run: {syncs} syncs, {dict(sorted(stats.items()))}")
    # Guard against a generator that silently stopped exploring.
    assert syncs >= 100
    assert stats["successful syncs"] >= 50
