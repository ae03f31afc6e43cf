"""The ASGI app: auth, the scheduler endpoints, costs, and the API's error conventions."""

import asyncio
import itertools
import logging
import time
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, insert, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from model_sync.api.costs import price_batch, read_batch
from model_sync.api.schemas import (
    CostsRequest,
    CostsResponse,
    ErrorResponse,
    HealthResponse,
    StatsResponse,
    SyncResponse,
)
from model_sync.auth import InvalidToken, TokenVerifier
from model_sync.settings import Settings
from model_sync.sources.base import unstorable_value
from model_sync.store import database
from model_sync.store.database import describe_database_error
from model_sync.store.runs import catalog_stats, iso_utc, last_successful_sync
from model_sync.store.tables import api_sync_requests

logger = logging.getLogger("model_sync.api")

TRIGGER_TAG = "model_sync/triggered_by"
REQUESTER_TAG = "model_sync/requested_by"
# HTTP status for each kind of sync failure (set by the assets on their Failure metadata).
FAILURE_STATUS = {"gateway": 502, "refused": 422, "database": 503, "config": 400}
# A request head larger than this is refused (431) by the HTTP parser itself, before anything
# reads a token: a 64 MiB Authorization header costs nothing but the first 16 KiB.
MAX_HEADER_BYTES = 16 * 1024
LOGGED_TOKEN_ERROR_CHARS = 200
# Serializes "is a sync running? if not, submit one" across API replicas (any 64-bit key).
SUBMIT_LOCK_KEY = 0x6D5F617069  # "m_api"
SUBMIT_LOCK_TIMEOUT_MS = 10_000
POLL_SECONDS = 0.5
SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class Unauthorized(Exception):
    def __init__(self, token_sent: bool):
        super().__init__()
        self.token_sent = token_sent


class SyncBackend:
    """What the sync endpoint needs from Dagster: submit a run, find a running one, read one.

    ``model_sync.dagster_runs`` in production; tests may hand in the same object."""

    def __init__(self, instance, submitter):
        self.instance = instance
        self.submitter = submitter

    def running(self) -> str | None:
        from model_sync.dagster_runs import running_sync

        return running_sync(self.instance)

    def submit(self, tags: dict[str, str]) -> str:
        return self.submitter.submit(tags)

    def outcome(self, run_id: str):
        from model_sync.dagster_runs import run_outcome

        return run_outcome(self.instance, run_id)


def create_app(settings: Settings, verifier: TokenVerifier | None, backend: SyncBackend) -> FastAPI:
    """The ASGI app. ``verifier=None`` means no auth: only for --insecure-no-auth."""
    refused_tokens = itertools.count(1)
    api = settings.api

    def engine() -> Engine:
        # Never migrates: a read-only role can serve the read endpoints.
        url = database.resolve_database_url(settings.database_url, settings.embedded_data_dir())
        return database.engine_for(url, settings.db_connect_timeout_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield

    app = FastAPI(
        title="model_sync API",
        version="1.1.0",
        description="Trigger an AI model catalog sync and read its stats.",
        lifespan=lifespan,
        # No redirects built from the client's Host header: /sync-stats/ is simply not found.
        redirect_slashes=False,
    )
    bearer = HTTPBearer(auto_error=False, description="A JWT (HS256, RS256 or ES256).")

    @app.middleware("http")
    async def bounded_headers(request: Request, call_next):
        # The HTTP parser stops reading a request head at MAX_HEADER_BYTES when it arrives in
        # pieces; one that arrives whole is measured here — either way before any token parsing.
        size = sum(len(name) + len(value) + 4 for name, value in request.scope["headers"])
        if size > MAX_HEADER_BYTES:
            return JSONResponse(
                {"error": "request header fields too large"},
                status_code=431,
                headers=SECURITY_HEADERS,
            )
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        # RFC 6750 §3.1: no error code when the request carried no credentials at all.
        challenge = 'Bearer error="invalid_token"' if exc.token_sent else "Bearer"
        return JSONResponse(
            {"error": "unauthorized"},
            status_code=401,
            headers={"WWW-Authenticate": challenge, **SECURITY_HEADERS},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "not found", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        return JSONResponse(
            {"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request"}, status_code=422)

    def authenticated(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> dict[str, Any]:
        if verifier is None:
            return {}
        if credentials is None or credentials.scheme.lower() != "bearer":
            logger.info("401 #%d: no bearer token", next(refused_tokens))
            raise Unauthorized(token_sent=False)
        try:
            return verifier.verify(credentials.credentials)
        except InvalidToken as error:
            logger.info(
                "401 #%d: refused a token: %s",
                next(refused_tokens),
                str(error)[:LOGGED_TOKEN_ERROR_CHARS],
            )
            raise Unauthorized(token_sent=True) from None

    unauthorized = {401: {"model": ErrorResponse, "description": "Missing or invalid token."}}

    @app.get("/healthz", response_model=HealthResponse, tags=["ops"])
    def healthz() -> HealthResponse:
        return HealthResponse(status="ok")

    # Load balancers probe with HEAD; one operation in the schema is enough.
    app.head("/healthz", include_in_schema=False)(healthz)

    def record_request(claims: dict[str, Any], status: int, outcome: str, run_id: str | None):
        try:
            with engine().begin() as connection:
                connection.execute(
                    insert(api_sync_requests).values(
                        subject=str(claims.get("sub"))[:200] if claims.get("sub") else None,
                        status_code=status,
                        outcome=outcome,
                        run_id=run_id,
                    )
                )
        except SQLAlchemyError as error:
            logger.warning("could not record the sync request: %s", describe_database_error(error))
        logger.info(
            "sync request by %s: %s %s (run %s)", claims.get("sub"), status, outcome, run_id
        )

    def submit_or_find(claims: dict[str, Any]) -> tuple[str, bool]:
        """(run id, submitted): under the advisory lock, the running sync or a new one."""
        with engine().connect() as connection:
            connection.execute(text(f"SET lock_timeout = {SUBMIT_LOCK_TIMEOUT_MS}"))
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SUBMIT_LOCK_KEY})
            try:
                running = backend.running()
                if running:
                    return running, False
                tags = {TRIGGER_TAG: "api"}
                if claims.get("sub"):
                    tags[REQUESTER_TAG] = str(claims["sub"])[:200]
                return backend.submit(tags), True
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": SUBMIT_LOCK_KEY}
                )
                connection.commit()

    sync_responses = {
        **unauthorized,
        202: {"model": SyncResponse, "description": "Still running; poll sync-runs/{runId}."},
        409: {"model": SyncResponse, "description": "A sync is already running."},
        422: {"model": SyncResponse, "description": "The new catalog was refused."},
        502: {"model": SyncResponse, "description": "A source failed."},
        503: {"model": SyncResponse, "description": "The database is unavailable."},
        500: {"model": SyncResponse, "description": "The sync failed."},
    }

    @app.post(
        "/api/v1/scheduler/sync-models",
        response_model=SyncResponse,
        responses=sync_responses,
        tags=["scheduler"],
    )
    async def sync_models(
        claims: Annotated[dict[str, Any], Depends(authenticated)],
    ) -> JSONResponse:
        try:
            run_id, submitted = await run_in_threadpool(submit_or_find, claims)
        except SQLAlchemyError as error:
            logger.warning("sync unavailable: %s", describe_database_error(error))
            await run_in_threadpool(record_request, claims, 503, "database unavailable", None)
            return _failure("database unavailable", None, 503)
        if not submitted:
            await run_in_threadpool(record_request, claims, 409, "already running", run_id)
            return _failure("a sync is already running", run_id, 409)
        response, outcome = await _wait_for(run_id, api.sync_wait_seconds)
        await run_in_threadpool(record_request, claims, response.status_code, outcome, run_id)
        return response

    @app.get(
        "/api/v1/scheduler/sync-runs/{run_id}",
        response_model=SyncResponse,
        responses={**sync_responses, 404: {"model": ErrorResponse}},
        tags=["scheduler"],
    )
    async def sync_run(
        run_id: str, claims: Annotated[dict[str, Any], Depends(authenticated)]
    ) -> JSONResponse:
        # No run's id holds NUL or a lone surrogate, and a Postgres-backed instance raises on
        # them (a 500) instead of finding nothing.
        if unstorable_value(run_id):
            return JSONResponse({"error": "not found"}, status_code=404)
        response, _ = await _wait_for(run_id, 0)
        return response

    async def _wait_for(run_id: str, wait_seconds: float) -> tuple[JSONResponse, str]:
        deadline = time.monotonic() + wait_seconds
        while True:
            outcome = await run_in_threadpool(backend.outcome, run_id)
            if outcome is None:
                return JSONResponse({"error": "not found"}, status_code=404), "not found"
            if outcome.finished:
                return _finished(outcome)
            if time.monotonic() >= deadline:
                body = {"success": False, "error": "the sync is still running", "runId": run_id}
                return JSONResponse(body, status_code=202), "accepted"
            await asyncio.sleep(POLL_SECONDS)

    @app.post(
        "/api/v1/costs",
        response_model=CostsResponse,
        responses={
            **unauthorized,
            413: {"model": ErrorResponse, "description": "Body over MAX_COST_BODY_BYTES."},
            422: {"model": ErrorResponse, "description": "Not a batch of usage records."},
            503: {"model": ErrorResponse},
        },
        tags=["costs"],
        # The body is read by the handler, after the token is checked (see read_batch); the
        # schema still documents it for clients and generated tests.
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CostsRequest"}}
                },
            }
        },
    )
    async def costs(
        request: Request, claims: Annotated[dict[str, Any], Depends(authenticated)]
    ) -> Any:
        """The exact cost of each usage record at the prices in force when it ran: its total,
        its meters, the price version used and the meters nothing prices. A bad record gets
        its own error; the batch goes on."""
        batch = await read_batch(request)
        if isinstance(batch, JSONResponse):
            return batch
        timeout_ms = round(api.read_timeout_seconds * 1000 * 4)
        return await run_in_threadpool(price_batch, engine(), timeout_ms, batch)

    @app.get(
        "/api/v1/scheduler/sync-stats",
        response_model=StatsResponse,
        responses={**unauthorized, 503: {"model": ErrorResponse}},
        tags=["scheduler"],
    )
    def sync_stats(claims: Annotated[dict[str, Any], Depends(authenticated)]) -> Any:
        try:
            with engine().begin() as connection:
                connection.execute(
                    text("SELECT set_config('statement_timeout', :ms, true)"),
                    {"ms": f"{round(api.read_timeout_seconds * 1000)}ms"},
                )
                active, inactive = catalog_stats(connection)
                last = last_successful_sync(connection)
        except SQLAlchemyError as error:
            logger.warning("stats unavailable: %s", describe_database_error(error))
            return JSONResponse({"error": "database unavailable"}, status_code=503)
        return StatsResponse(
            totalModels=active + inactive,
            activeModels=active,
            inactiveModels=inactive,
            lastSyncDate=iso_utc(last.finished_at) if last else None,
        )

    generated_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # The costs body is parsed by hand (after auth), so FastAPI does not list its model.
        schema = generated_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "CostsRequest" not in components:
            request_schema = CostsRequest.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components.update(request_schema.pop("$defs", {}))
            components["CostsRequest"] = request_schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _failure(error: str, run_id: str | None, status: int) -> JSONResponse:
    return JSONResponse({"success": False, "error": error, "runId": run_id}, status_code=status)


def _finished(outcome) -> tuple[JSONResponse, str]:
    from dagster import DagsterRunStatus

    if outcome.status == DagsterRunStatus.SUCCESS and not outcome.failures:
        if not outcome.counts:  # MODEL_SYNC_CONCURRENT_SYNC=skip: another sync held the lock
            return _failure("a sync is already running", None, 409), "skipped"
        result = {**outcome.totals(), "runId": outcome.run_id, "sources": outcome.counts}
        return JSONResponse({"success": True, "result": result}), "success"
    kinds = [kind for _step, kind, _message in outcome.failures]
    # The most telling failure decides the status: a refusal, then a gateway, then the database.
    kind = next((k for k in ("refused", "gateway", "database", "config") if k in kinds), None)
    if outcome.failures:
        message = "; ".join(f"{step}: {message}" for step, _kind, message in outcome.failures)
    else:
        message = f"the run ended {outcome.status.value.lower()}"
    status = FAILURE_STATUS.get(kind, 500)
    if kind == "database":
        message = "database unavailable"  # host, port and name stay in the run's log
    return _failure(message[:2000], outcome.run_id, status), f"failed: {kind or 'error'}"
