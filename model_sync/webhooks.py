"""Change-feed delivery: POST each outbox event to its subscriber, signed, at least once.

Events are written to ``webhook_outbox`` in the sync's own transaction, so an event exists iff
its catalog change committed. Delivery happens afterwards — right after the sync, and from a
sensor — and never blocks or rolls back a sync. Each row is locked while it is being sent
(``FOR UPDATE SKIP LOCKED``), so the sensor and a sync never post the same event at once; a
crash between the POST and the commit can still repeat it, which is why receivers
de-duplicate on the delivery id.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import BigInteger, Engine, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

from model_sync.settings import WebhookSettings

SIGNATURE_HEADER = "X-Model-Sync-Signature"
DELIVERY_HEADER = "X-Model-Sync-Delivery"
EVENT_HEADER = "X-Model-Sync-Event"
MAX_BACKOFF = timedelta(hours=1)


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does (constant-time compare); used by our own tests as a receiver."""
    return hmac.compare_digest(sign(secret, body), signature)


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    # The pass stopped at its time budget; the rest waits for the next one.
    out_of_time: bool = False


_CLAIM_SQL = """
SELECT id, delivery_id::text, subscriber_url, event_type, payload::text, attempts
FROM webhook_outbox
WHERE delivered_at IS NULL AND next_attempt_at <= now() AND id <> ALL(:attempted)
ORDER BY id
LIMIT 1
FOR UPDATE SKIP LOCKED
"""

_DELIVERED_SQL = """
UPDATE webhook_outbox
SET delivered_at = now(), last_attempt_at = now(), attempts = attempts + 1,
    last_status = :status, last_error = NULL
WHERE id = :id
"""

_FAILED_SQL = """
UPDATE webhook_outbox
SET attempts = attempts + 1, last_attempt_at = now(), last_status = :status,
    last_error = :error, next_attempt_at = now() + make_interval(secs => :delay)
WHERE id = :id
"""

_FAILING_SQL = """
SELECT count(*), min(created_at) FROM webhook_outbox
WHERE delivered_at IS NULL AND attempts >= :attempts
  AND (CAST(:source AS text) IS NULL OR payload->>'source' = :source)
"""


def backoff_seconds(attempts: int, base_seconds: float) -> float:
    """Exponential backoff after the ``attempts``-th failure, capped at an hour."""
    return min(base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds())


def deliver_pending(
    engine: Engine, settings: WebhookSettings, *, limit: int = 100
) -> DeliveryReport:
    """Send due events once each, within ``settings.budget_seconds``; failures are rescheduled
    with backoff, never raised.

    Each event is tried at most once per call, so a receiver that is down is not hammered even
    with a zero backoff. The budget keeps a pass (in a sensor tick, or right after a sync) well
    inside Dagster's tick timeout however many receivers hang: no new event is claimed once it
    is spent, and each POST gets at most what is left of it.
    """
    secret = settings.secret or ""
    deadline = time.monotonic() + settings.budget_seconds
    report = DeliveryReport()
    attempted: list[int] = []
    with httpx.Client() as client:
        for _ in range(limit):
            remaining = deadline - time.monotonic()
            if remaining <= 0.1:
                report.out_of_time = True
                break
            with engine.begin() as connection:
                claimed = connection.execute(
                    text(_CLAIM_SQL).bindparams(bindparam("attempted", type_=ARRAY(BigInteger))),
                    {"attempted": attempted},
                ).one_or_none()
                if claimed is None:
                    break
                row_id, delivery_id, url, event_type, body_text, attempts = claimed
                attempted.append(row_id)
                body = body_text.encode()
                headers = {
                    "Content-Type": "application/json",
                    DELIVERY_HEADER: delivery_id,
                    EVENT_HEADER: event_type,
                    SIGNATURE_HEADER: sign(secret, body),
                }
                status, error = None, None
                try:
                    response = client.post(
                        url,
                        content=body,
                        headers=headers,
                        timeout=min(settings.timeout_seconds, remaining),
                    )
                    status = response.status_code
                    if not response.is_success:
                        error = f"HTTP {status}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                if error is None:
                    connection.execute(text(_DELIVERED_SQL), {"id": row_id, "status": status})
                    report.delivered += 1
                else:
                    delay = backoff_seconds(attempts + 1, settings.backoff_seconds)
                    connection.execute(
                        text(_FAILED_SQL),
                        {"id": row_id, "status": status, "error": error[:2000], "delay": delay},
                    )
                    report.failed += 1
                    report.errors.append(f"{url} ({delivery_id}): {error}")
    return report


def failing_deliveries(
    engine: Engine, alert_after_attempts: int, source: str | None = None
) -> tuple[int, object]:
    """(count, oldest creation time) of undelivered events (of one source, or all) that
    failed this often or more."""
    with engine.connect() as connection:
        count, oldest = connection.execute(
            text(_FAILING_SQL), {"attempts": alert_after_attempts, "source": source}
        ).one()
    return count, oldest
