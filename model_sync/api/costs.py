"""POST /api/v1/costs: the body read after auth and within bounds, each record priced on its
own (a bad record gets its error, the batch goes on)."""

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from model_sync.api.schemas import CostOut, CostResult, CostsRequest, CostsResponse, UsageRecord
from model_sync.costing import Usage, UsageError, exact_text
from model_sync.sources.base import (
    ResponseError,
    decode_json,
    storable_text,
    unstorable_value,
)
from model_sync.store.costs import NoPrice, cost_in_sql, resolve_model
from model_sync.store.database import describe_database_error

logger = logging.getLogger("model_sync.api")

# 1,000 records of a few hundred bytes each, with room to spare; a larger body is refused
# (413) before it is read in full.
MAX_COST_BODY_BYTES = 1024 * 1024


def price_batch(engine: Engine, statement_timeout_ms: int, batch: CostsRequest) -> Any:
    """Every record of ``batch`` priced in one read transaction, or 503 if the database is
    unavailable."""
    try:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT set_config('statement_timeout', :ms, true)"),
                {"ms": f"{statement_timeout_ms}ms"},
            )
            results = [
                _price_record(connection, index, record)
                for index, record in enumerate(batch.records)
            ]
    except SQLAlchemyError as error:
        logger.warning("costs unavailable: %s", describe_database_error(error))
        return JSONResponse({"error": "database unavailable"}, status_code=503)
    return CostsResponse(results=results)


async def read_batch(request: Request) -> CostsRequest | JSONResponse:
    """The costs batch, read only once the caller is authenticated and only up to
    ``MAX_COST_BODY_BYTES`` (a declared body parameter would be read and parsed in full before
    any dependency runs — an unauthenticated client could make the API hold any size of body).
    JSON numbers are read as Decimals, so a fractional meter count stays exact."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_COST_BODY_BYTES:
        return _body_too_large()
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_COST_BODY_BYTES:
            return _body_too_large()
    try:
        return CostsRequest.model_validate(decode_json(bytes(received)))
    except (ResponseError, ValidationError):
        return JSONResponse({"error": "invalid request"}, status_code=422)


def _body_too_large() -> JSONResponse:
    return JSONResponse(
        {"error": f"request body over {MAX_COST_BODY_BYTES} bytes"}, status_code=413
    )


def _price_record(connection, index: int, record: UsageRecord) -> CostResult:
    # Text Postgres cannot hold (NUL, a lone surrogate) would fail the shared read
    # transaction — the whole batch answered 503 for one record. It is that record's error,
    # and its ids are echoed escaped so the answer itself can be written as UTF-8 JSON.
    problem = unstorable_value(
        {
            "source": record.source,
            "model_id": record.model_id,
            "canonical_model_id": record.canonical_model_id,
            "usage": record.usage,
        }
    )
    if problem:
        return CostResult(
            index=index,
            source=None if record.source is None else storable_text(record.source),
            model_id=None if record.model_id is None else storable_text(record.model_id),
            error=f"{problem}, which no catalog row can hold",
        )
    try:
        Usage.parse(record.usage)  # a clear message for a bad usage object, before any SQL
        if record.model_id is not None:
            if record.source is None:
                raise UsageError("give the source with model_id (or a canonical_model_id)")
            source, model_id = record.source, record.model_id
        elif record.canonical_model_id is not None:
            source, model_id = resolve_model(connection, record.canonical_model_id, record.source)
        else:
            raise UsageError("give source and model_id, or canonical_model_id")
    except (UsageError, NoPrice) as error:
        return CostResult(
            index=index, source=record.source, model_id=record.model_id, error=str(error)
        )
    answer = cost_in_sql(connection, source, model_id, record.at or datetime.now(UTC), record.usage)
    if "error" in answer:
        return CostResult(index=index, source=source, model_id=model_id, error=answer["error"])
    return CostResult(
        index=index,
        source=source,
        model_id=model_id,
        cost=CostOut(
            total=exact_text(answer["total"]),
            meters={meter: exact_text(cost) for meter, cost in answer["meters"].items()},
            version_id=answer["version_id"],
            unpriced=answer["unpriced"],
        ),
    )
