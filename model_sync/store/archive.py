"""The response archive: every distinct body each source served, compressed, stored once.

A transform bug found in March should be fixable for January's prices too. So every body is
kept (by sha256, zlib-compressed — JSON catalogs shrink about tenfold), together with the
order in which each source served its bodies, and ``model-sync rebuild`` replays them into a
fresh catalog. A body served again adds nothing, so per-minute polling costs no more storage
than a daily sync unless the upstream really changes that often.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from model_sync.gateway import FetchedBody
from model_sync.store.tables import response_archive, response_captures

COMPRESSION = "zlib"
_LOCK_PREFIX = "model_sync_archive:"


@dataclass(frozen=True)
class Capture:
    """One body as a source served it, in capture order."""

    source: str
    sha256: str
    url: str
    fetched_at: datetime


def archive_response(engine: Engine, source: str, fetched: FetchedBody) -> bool:
    """Keep ``fetched`` in the archive; returns whether the body was new to the archive.

    Its own short transaction, before the sync: a body the guards refuse is archived too,
    because it is what the source served.
    """
    with engine.begin() as connection:
        connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": _LOCK_PREFIX + source}
        )
        known = connection.execute(
            select(response_archive.c.sha256).where(response_archive.c.sha256 == fetched.sha256)
        ).first()
        if known is None:
            connection.execute(
                pg_insert(response_archive)
                .values(
                    sha256=fetched.sha256,
                    source=source,
                    url=fetched.url,
                    first_fetched_at=fetched.fetched_at,
                    byte_count=fetched.byte_count,
                    compression=COMPRESSION,
                    body=zlib.compress(fetched.body, 6),
                )
                .on_conflict_do_nothing(index_elements=["sha256"])
            )
        if _last_capture(connection, source) != fetched.sha256:
            connection.execute(
                insert(response_captures).values(
                    source=source, sha256=fetched.sha256, fetched_at=fetched.fetched_at
                )
            )
    return known is None


def _last_capture(connection: Connection, source: str) -> str | None:
    return connection.execute(
        select(response_captures.c.sha256)
        .where(response_captures.c.source == source)
        .order_by(response_captures.c.fetched_at.desc(), response_captures.c.id.desc())
        .limit(1)
    ).scalar()


def captures(engine: Engine, source: str | None = None) -> list[Capture]:
    """Every capture (of one source, or all), oldest first."""
    query = (
        select(
            response_captures.c.source,
            response_captures.c.sha256,
            response_archive.c.url,
            response_captures.c.fetched_at,
        )
        .join(response_archive, response_archive.c.sha256 == response_captures.c.sha256)
        .order_by(response_captures.c.fetched_at, response_captures.c.id)
    )
    if source is not None:
        query = query.where(response_captures.c.source == source)
    with engine.connect() as connection:
        return [Capture(*row) for row in connection.execute(query)]


def load_body(engine: Engine, sha256: str) -> bytes:
    with engine.connect() as connection:
        compression, body = connection.execute(
            select(response_archive.c.compression, response_archive.c.body).where(
                response_archive.c.sha256 == sha256
            )
        ).one()
    if compression != COMPRESSION:
        raise ValueError(f"archived body {sha256} uses unknown compression {compression!r}")
    return zlib.decompress(body)


def copy_archive(source_engine: Engine, target_engine: Engine) -> Iterator[Capture]:
    """Copy every archived body and capture into another catalog's archive, oldest first,
    yielding each capture once it is there (``model-sync rebuild --from``)."""
    for capture in captures(source_engine):
        fetched = FetchedBody.of(
            capture.url, load_body(source_engine, capture.sha256), fetched_at=capture.fetched_at
        )
        archive_response(target_engine, capture.source, fetched)
        yield capture
