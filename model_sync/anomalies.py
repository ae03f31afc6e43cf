"""Price anomaly rules — pure functions over (old, new) prices.

A gateway that publishes a price 100× too low for one afternoon would make every downstream
bill wrong, and nobody would notice until the invoice. So a sync refuses implausible moves
unless an operator accepts them, while ordinary repricing (real catalogs do cut prices 4×,
and a cache-read price once rose 6×) only warns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import StrEnum


class Severity(StrEnum):
    """What a flagged move does to the sync: refuse it (unless accepted), or only warn."""

    FAIL = "fail"
    WARN = "warn"


FAIL = Severity.FAIL
WARN = Severity.WARN


@dataclass(frozen=True)
class PriceChange:
    model_id: str
    field: str
    old: Decimal | None
    new: Decimal | None


@dataclass(frozen=True)
class Finding:
    severity: Severity
    model_id: str
    field: str
    old: str | None
    new: str | None
    reason: str

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.model_id} {self.field}: {self.old} → {self.new} ({self.reason})"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _factor_text(factor: Decimal) -> str:
    """Three significant digits, written plainly: an exact 10× move is ``10``, not the
    ``1e+1`` that formatting the quotient ``Decimal('1E+1')`` with ``.3g`` gives."""
    return format(Decimal(format(factor, ".3g")), "f")


def assess_price_change(
    change: PriceChange, fail_factor: Decimal, warn_factor: Decimal
) -> Finding | None:
    """Classify one price move: a failure, a warning, or nothing worth saying."""
    old, new = change.old, change.new

    def finding(severity: Severity, reason: str) -> Finding:
        return Finding(severity, change.model_id, change.field, _text(old), _text(new), reason)

    if old is None or new is None:
        if old is not None and old > 0:
            return finding(WARN, "price removed")
        return None
    if old > 0 and new == 0:
        return finding(FAIL, "a paid price dropped to 0")
    if old == 0:
        return finding(WARN, "a free price became paid") if new > 0 else None
    factor = max(new / old, old / new)
    moved = f"{'rose' if new > old else 'fell'} by a factor of {_factor_text(factor)}"
    if factor > fail_factor:
        return finding(FAIL, f"{moved} (limit {fail_factor})")
    if factor > warn_factor:
        return finding(WARN, moved)
    return None


def assess_price_changes(
    changes: list[PriceChange], fail_factor: Decimal, warn_factor: Decimal
) -> list[Finding]:
    findings = (assess_price_change(c, fail_factor, warn_factor) for c in changes)
    return [f for f in findings if f is not None]


def tiers_vanished(model_id: str, field: str) -> Finding:
    return Finding(WARN, model_id, field, "tiered", None, "price tiers vanished")
