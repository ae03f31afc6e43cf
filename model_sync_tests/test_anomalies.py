"""The price anomaly rules at their exact boundaries, and once through the real job.

Every expectation is written by hand from the README: "The run fails, writing nothing, when a
paid price drops to 0 or a price moves by more than MODEL_SYNC_ANOMALY_FAIL_FACTOR (10×) either
way ... Moves above MODEL_SYNC_ANOMALY_WARN_FACTOR (3×) and vanished price tiers only warn."
So a move of exactly 3× says nothing, exactly 10× warns, and anything past 10× fails — in
either direction. Where the README is silent (a free price becoming paid, a price that
disappears), the tests pin the behaviour ``model_sync.anomalies`` documents.

The unit tests are pure; the last test runs the sync job against a real Postgres and a real
HTTP server on loopback.
"""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from model_sync.anomalies import (
    FAIL,
    WARN,
    Finding,
    PriceChange,
    assess_price_change,
    assess_price_changes,
    tiers_vanished,
)
from model_sync.settings import SyncPolicy
from model_sync_tests.snapshots import snapshot_models
from model_sync_tests.test_sync import materialization_metadata, serve_models

# The README's defaults, written by hand ...
FAIL_FACTOR = Decimal("10")
WARN_FACTOR = Decimal("3")
# ... and as every sync passes them: SyncPolicy's Decimal(str(float)) of the settings.
JOB_FAIL_FACTOR = Decimal("10.0")
JOB_WARN_FACTOR = Decimal("3.0")


def assess(old: str | None, new: str | None, fail: Decimal = FAIL_FACTOR, warn=WARN_FACTOR):
    change = PriceChange(
        "acme/model",
        "cost_per_1m_input",
        None if old is None else Decimal(old),
        None if new is None else Decimal(new),
    )
    return assess_price_change(change, fail, warn)


def severity(finding: Finding | None) -> str | None:
    return None if finding is None else finding.severity


# (old, new, expected severity). "Hair" moves are 1e-6 of a unit past or short of the factor.
BOUNDARIES = [
    # up, around 3×
    pytest.param("1", "2.999999", None, id="up-just-below-3x"),
    pytest.param("1", "3", None, id="up-exactly-3x"),
    pytest.param("1", "3.000001", WARN, id="up-just-above-3x"),
    # up, around 10×
    pytest.param("1", "9.999999", WARN, id="up-just-below-10x"),
    pytest.param("1", "10", WARN, id="up-exactly-10x"),
    pytest.param("1", "10.000001", FAIL, id="up-just-above-10x"),
    # down, around 3× (the old price is the larger one)
    pytest.param("2.999999", "1", None, id="down-just-below-3x"),
    pytest.param("3", "1", None, id="down-exactly-3x"),
    pytest.param("3.000001", "1", WARN, id="down-just-above-3x"),
    pytest.param("1", "0.333334", None, id="down-to-a-third-plus-a-hair"),
    pytest.param("1", "0.333333", WARN, id="down-to-a-third-minus-a-hair"),
    # down, around 10×
    pytest.param("9.999999", "1", WARN, id="down-just-below-10x"),
    pytest.param("10", "1", WARN, id="down-exactly-10x"),
    pytest.param("10.000001", "1", FAIL, id="down-just-above-10x"),
    pytest.param("1", "0.1", WARN, id="down-to-a-tenth"),
    pytest.param("1", "0.0999999", FAIL, id="down-below-a-tenth"),
    # real catalog magnitudes (USD per 1M tokens)
    pytest.param("2.5", "7.5", None, id="2.5-to-7.5"),
    pytest.param("2.5", "25", WARN, id="2.5-to-25"),
    pytest.param("2.5", "25.0000001", FAIL, id="2.5-to-25.0000001"),
    pytest.param("2.5", "0.25", WARN, id="2.5-to-0.25"),
    pytest.param("2.5", "0.2499999", FAIL, id="2.5-to-0.2499999"),
    pytest.param("0.12", "0.36", None, id="0.12-to-0.36"),
    pytest.param("0.12", "1.2", WARN, id="0.12-to-1.2"),
    pytest.param("0.12", "1.2000001", FAIL, id="0.12-to-1.2000001"),
    # unchanged, and ordinary repricing
    pytest.param("2.5", "2.5", None, id="unchanged"),
    pytest.param("2.5", "2.50", None, id="same-value-other-scale"),
    pytest.param("15", "10", None, id="cut-by-a-third"),
    # paid → 0: always refused, whatever the size of the paid price
    pytest.param("2.5", "0", FAIL, id="paid-to-zero"),
    pytest.param("0.000001", "0", FAIL, id="tiny-paid-to-zero"),
    pytest.param("1000000", "0", FAIL, id="huge-paid-to-zero"),
    # free → paid warns (README: silent; anomalies.py: "a free price became paid")
    pytest.param("0", "0.000001", WARN, id="free-to-tiny-paid"),
    pytest.param("0", "1000", WARN, id="free-to-paid"),
    # free → free
    pytest.param("0", "0", None, id="free-to-free"),
    # a price appearing or disappearing
    pytest.param(None, "2.5", None, id="new-price"),
    pytest.param(None, "0", None, id="new-free-price"),
    pytest.param("2.5", None, WARN, id="paid-price-removed"),
    pytest.param("0", None, None, id="free-price-removed"),
    pytest.param(None, None, None, id="no-price-either-side"),
]


@pytest.mark.parametrize(("old", "new", "expected"), BOUNDARIES)
def test_price_move_is_refused_warned_or_accepted_per_the_readme(old, new, expected) -> None:
    assert severity(assess(old, new)) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param("1", "3", None, id="up-exactly-3x"),
        pytest.param("1", "3.000001", WARN, id="up-just-above-3x"),
        pytest.param("1", "10", WARN, id="up-exactly-10x"),
        pytest.param("1", "10.000001", FAIL, id="up-just-above-10x"),
        pytest.param("10", "1", WARN, id="down-exactly-10x"),
        pytest.param("10.000001", "1", FAIL, id="down-just-above-10x"),
        pytest.param("3", "1", None, id="down-exactly-3x"),
        pytest.param("3.000001", "1", WARN, id="down-just-above-3x"),
    ],
)
def test_boundaries_hold_with_the_factors_as_the_job_passes_them(old, new, expected) -> None:
    """The sync hands over Decimal('10.0') / Decimal('3.0'): the same numbers, other exponent."""
    policy = SyncPolicy()
    assert (str(policy.fail_factor), str(policy.warn_factor)) == ("10.0", "3.0")
    assert severity(assess(old, new, JOB_FAIL_FACTOR, JOB_WARN_FACTOR)) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param("1", "10.000001", WARN, id="past-the-default-fail-factor-only-warns"),
        pytest.param("1", "4", None, id="exactly-the-warn-factor"),
        pytest.param("1", "4.000001", WARN, id="just-above-the-warn-factor"),
        pytest.param("1", "20", WARN, id="exactly-the-fail-factor"),
        pytest.param("1", "20.000001", FAIL, id="just-above-the-fail-factor"),
        pytest.param("20", "1", WARN, id="down-exactly-the-fail-factor"),
        pytest.param("20.000001", "1", FAIL, id="down-just-above-the-fail-factor"),
    ],
)
def test_configured_factors_move_both_boundaries(old, new, expected) -> None:
    """MODEL_SYNC_ANOMALY_FAIL_FACTOR=20, MODEL_SYNC_ANOMALY_WARN_FACTOR=4."""
    assert severity(assess(old, new, Decimal("20"), Decimal("4"))) == expected


def test_a_refusal_names_model_field_old_and_new_in_plain_decimals() -> None:
    """The error lists each model, field, old and new value (README), without exponents."""
    change = PriceChange("openai/gpt-4o", "cost_per_1m_input", Decimal("2.5"), Decimal("2.6E+1"))
    finding = assess_price_change(change, FAIL_FACTOR, WARN_FACTOR)
    assert finding is not None
    assert (finding.severity, finding.model_id, finding.field) == (
        FAIL,
        "openai/gpt-4o",
        "cost_per_1m_input",
    )
    assert (finding.old, finding.new) == ("2.5", "26")
    assert finding.reason.startswith("rose by a factor of ")
    assert finding.describe().startswith("openai/gpt-4o cost_per_1m_input: 2.5 → 26 (rose ")


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        # Quotients whose Decimal exponent is positive (2E-5 / 2E-6 is 1E+1) used to read
        # "by a factor of 1e+1"; each expected text is the factor by hand, 3 significant digits.
        ("0.000002", "0.00002", "rose by a factor of 10"),
        ("0.00002", "0.000002", "fell by a factor of 10"),
        ("2.5", "26", "rose by a factor of 10.4 (limit 10)"),
        ("0.001", "1", "rose by a factor of 1000 (limit 10)"),
        ("3", "10", "rose by a factor of 3.33"),
        ("0.3", "0.09", "fell by a factor of 3.33"),
    ],
)
def test_the_factor_is_written_plainly_with_three_significant_digits(old, new, reason) -> None:
    finding = assess(old, new)
    assert finding is not None
    assert finding.reason == reason


@pytest.mark.parametrize(
    ("old", "new", "direction"),
    [("1", "10", "rose"), ("10", "1", "fell"), ("1", "11", "rose"), ("11", "1", "fell")],
)
def test_the_reason_says_which_way_the_price_moved(old, new, direction) -> None:
    finding = assess(old, new)
    assert finding is not None
    assert finding.reason.startswith(f"{direction} by a factor of ")


def test_paid_to_zero_and_removed_prices_say_so() -> None:
    dropped = assess("2.5", "0")
    assert dropped is not None
    assert (dropped.old, dropped.new, dropped.reason) == ("2.5", "0", "a paid price dropped to 0")
    removed = assess("2.5", None)
    assert removed is not None
    assert (removed.old, removed.new, removed.reason) == ("2.5", None, "price removed")
    became_paid = assess("0", "1")
    assert became_paid is not None
    assert (became_paid.old, became_paid.new) == ("0", "1")
    assert became_paid.reason == "a free price became paid"


def test_assess_price_changes_keeps_only_flagged_moves_in_order() -> None:
    changes = [
        PriceChange("a/one", "cost_per_1m_input", Decimal("1"), Decimal("3")),  # exactly 3×: ok
        PriceChange("a/two", "cost_per_1m_output", Decimal("1"), Decimal("11")),  # fail
        PriceChange("a/three", "cost_per_1m_input", Decimal("0"), Decimal("0")),  # nothing
        PriceChange("a/four", "cost_per_1m_cache_read", Decimal("4"), Decimal("1")),  # warn
        PriceChange("a/five", "web_search_cost", Decimal("10"), None),  # removed: warn
    ]
    findings = assess_price_changes(changes, FAIL_FACTOR, WARN_FACTOR)
    assert [(f.model_id, f.field, f.severity) for f in findings] == [
        ("a/two", "cost_per_1m_output", FAIL),
        ("a/four", "cost_per_1m_cache_read", WARN),
        ("a/five", "web_search_cost", WARN),
    ]
    assert assess_price_changes([], FAIL_FACTOR, WARN_FACTOR) == []


def test_vanished_tiers_only_warn() -> None:
    finding = tiers_vanished("anthropic/claude-sonnet-4", "input_tiers")
    assert finding == Finding(
        WARN, "anthropic/claude-sonnet-4", "input_tiers", "tiered", None, "price tiers vanished"
    )
    assert finding.as_dict() == {
        "severity": "warn",
        "model_id": "anthropic/claude-sonnet-4",
        "field": "input_tiers",
        "old": "tiered",
        "new": None,
        "reason": "price tiers vanished",
    }


# --- through the real job ------------------------------------------------------------------

BASE = "models-2025-11-18.json"
MODEL = "openai/gpt-4o"


def with_input_price(models: list[dict], per_token: str) -> list[dict]:
    changed = copy.deepcopy(models)
    [model] = [m for m in changed if m["id"] == MODEL]
    model["pricing"]["input"] = per_token
    return changed


def failure_text(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return "\n".join(e.step_failure_data.user_failure_data.description for e in failures)


def test_exactly_10x_is_accepted_with_a_warning_and_just_past_it_is_refused(
    run_sync, httpserver, db
):
    """Both directions, with default settings: 2.5 → 25 → 2.5 per 1M pass and warn;
    25.0000001 (10.00000004×) and 2.49999 (10.000004× down) are refused and write nothing."""
    models = snapshot_models(BASE)
    [served] = [m for m in models if m["id"] == MODEL]
    assert served["pricing"]["input"] == "0.0000025"  # 2.5 per 1M
    assert run_sync(serve_models(httpserver, models)).success

    def catalog() -> list[tuple]:
        return db.execute("SELECT * FROM ai_models ORDER BY model_id").fetchall()

    def stored_input() -> str:
        return db.execute(
            "SELECT cost_per_1m_input::text FROM ai_models WHERE model_id = %s", (MODEL,)
        ).fetchone()[0]

    def last_run() -> tuple:
        return db.execute(
            "SELECT status, warnings FROM model_sync_runs ORDER BY id DESC LIMIT 1"
        ).fetchone()

    steps = [
        # (served per-token input price, refused?, stored per-1M text afterwards, old, new)
        ("0.0000250000001", True, "2.5", "2.5", "25.0000001"),
        ("0.000025", False, "25", "2.5", "25"),
        ("0.00000249999", True, "25", "25", "2.49999"),
        ("0.0000025", False, "2.5", "25", "2.5"),
    ]
    for per_token, refused, stored_after, old, new in steps:
        before = catalog()
        result = run_sync(serve_models(httpserver, with_input_price(models, per_token)))
        assert result.success is not refused, per_token
        status, warnings = last_run()
        if refused:
            assert status == "failed"
            message = failure_text(result)
            assert "refusing 1 implausible price change(s)" in message
            assert f"{MODEL} cost_per_1m_input: {old} → {new} (" in message
            assert catalog() == before, "a refused sync must write nothing"
        else:
            assert status == "success"
            assert [
                (w["severity"], w["model_id"], w["field"], w["old"], w["new"]) for w in warnings
            ] == [("warn", MODEL, "cost_per_1m_input", old, new)]
            assert materialization_metadata(result, "ai_models")["price_warnings"] == 1
        assert stored_input() == stored_after
