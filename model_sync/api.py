"""HTTP API: trigger a sync and read its stats, behind JWT bearer auth.

It keeps the NestJS module's two endpoints for the services that call them. A sync triggered
here runs the same Dagster job as the schedule, on the same Dagster instance
(``$DAGSTER_HOME``), so it appears in the UI's run list, tagged ``model_sync/triggered_by=api``.

Start it with ``model-sync-api [--host 127.0.0.1] [--port 8000]``.
"""

import argparse
import logging
import os
import sys
import threading
from contextlib import asynccontextmanager
from typing import Annotated, Any

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from model_sync.auth import InvalidToken, TokenVerifier, describe
from model_sync.definitions import build_definitions
from model_sync.schedules import SYNC_JOB_NAME
from model_sync.settings import Settings, SettingsError
from model_sync.store.database import describe_database_error
from model_sync.store.sync import catalog_stats, iso_utc, last_successful_sync

logger = logging.getLogger("model_sync.api")

TRIGGER_TAG = "model_sync/triggered_by"
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
# HTTP status for each kind of sync failure (set by the assets on their Failure metadata).
FAILURE_STATUS = {"gateway": 502, "refused": 422, "database": 503, "config": 400}
COUNT_KEYS = ("total", "created", "updated", "unchanged", "deactivated", "reactivated", "failed")


class SyncCountsOut(BaseModel):
    total: int
    created: int
    updated: int
    unchanged: int
    deactivated: int
    reactivated: int
    failed: int
    runId: str


class SyncResponse(BaseModel):
    success: bool
    result: SyncCountsOut | None = None
    error: str | None = None
    runId: str | None = None


class StatsResponse(BaseModel):
    totalModels: int
    activeModels: int
    inactiveModels: int
    lastSyncDate: str | None = Field(description="Last successful sync, ISO-8601 UTC, or null.")


class ErrorResponse(BaseModel):
    error: str


class HealthResponse(BaseModel):
    status: str


class Unauthorized(Exception):
    def __init__(self, token_sent: bool):
        super().__init__()
        self.token_sent = token_sent


def create_app(
    settings: Settings,
    verifier: TokenVerifier | None,
    instance: DagsterInstance | None = None,
) -> FastAPI:
    """The ASGI app. ``verifier=None`` means no auth: only for --insecure-no-auth."""
    defs = build_definitions(settings)
    job = defs.resolve_job_def(SYNC_JOB_NAME)
    catalog = defs.resources["catalog"]
    # One sync at a time from this process; syncs from elsewhere are seen in the run storage.
    local_sync = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if instance is not None:
            app.state.instance = instance
            yield
            return
        if os.environ.get("DAGSTER_HOME"):
            app.state.instance = DagsterInstance.get()
        else:
            logger.warning(
                "DAGSTER_HOME is not set: API-triggered runs go to a temporary Dagster instance "
                "and will not show in the UI's run list"
            )
            app.state.instance = DagsterInstance.ephemeral()
        yield

    app = FastAPI(
        title="model_sync API",
        version="1.0.0",
        description="Trigger an AI model catalog sync and read its stats.",
        lifespan=lifespan,
    )
    bearer = HTTPBearer(auto_error=False, description="A JWT (HS256, RS256 or ES256).")

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        # RFC 6750 §3.1: no error code when the request carried no credentials at all.
        challenge = 'Bearer error="invalid_token"' if exc.token_sent else "Bearer"
        return JSONResponse(
            {"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": challenge}
        )

    def authenticated(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> dict[str, Any]:
        if verifier is None:
            return {}
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized(token_sent=False)
        try:
            return verifier.verify(credentials.credentials)
        except InvalidToken as error:
            logger.info("refused a token: %s", error)
            raise Unauthorized(token_sent=True) from None

    unauthorized = {401: {"model": ErrorResponse, "description": "Missing or invalid token."}}

    @app.get("/healthz", response_model=HealthResponse, tags=["ops"])
    def healthz() -> HealthResponse:
        return HealthResponse(status="ok")

    def _running_sync(dagster_instance: DagsterInstance) -> str | None:
        for record in dagster_instance.get_run_records(RunsFilter(statuses=IN_PROGRESS), limit=50):
            run = record.dagster_run
            if run.job_name == SYNC_JOB_NAME or AssetKey("ai_models") in (
                run.asset_selection or ()
            ):
                return run.run_id
        return None

    @app.post(
        "/api/v1/scheduler/sync-models",
        response_model=SyncResponse,
        responses={
            **unauthorized,
            409: {"model": SyncResponse, "description": "A sync is already running."},
            422: {"model": SyncResponse, "description": "The new catalog was refused."},
            502: {"model": SyncResponse, "description": "The gateway failed."},
            503: {"model": SyncResponse, "description": "The database is unavailable."},
            500: {"model": SyncResponse, "description": "The sync failed."},
        },
        tags=["scheduler"],
    )
    def sync_models(
        request: Request, claims: Annotated[dict[str, Any], Depends(authenticated)]
    ) -> JSONResponse:
        dagster_instance: DagsterInstance = request.app.state.instance
        if not local_sync.acquire(blocking=False):
            return _busy(_running_sync(dagster_instance))
        try:
            running = _running_sync(dagster_instance)
            if running:
                return _busy(running)
            tags = {TRIGGER_TAG: "api"}
            if claims.get("sub"):
                tags["model_sync/requested_by"] = str(claims["sub"])[:200]
            result = job.execute_in_process(
                instance=dagster_instance, tags=tags, raise_on_error=False
            )
        finally:
            local_sync.release()
        return _sync_response(result)

    @app.get(
        "/api/v1/scheduler/sync-stats",
        response_model=StatsResponse,
        responses={**unauthorized, 503: {"model": ErrorResponse}},
        tags=["scheduler"],
    )
    def sync_stats(claims: Annotated[dict[str, Any], Depends(authenticated)]) -> Any:
        try:
            with catalog.engine().connect() as connection:
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

    return app


def _busy(run_id: str | None) -> JSONResponse:
    return JSONResponse(
        {"success": False, "error": "a sync is already running", "runId": run_id},
        status_code=409,
    )


def _sync_response(result) -> JSONResponse:
    run_id = result.run_id
    if result.success:
        materializations = [
            event
            for event in result.get_asset_materialization_events()
            if event.asset_key == AssetKey("ai_models")
        ]
        if not materializations:  # MODEL_SYNC_CONCURRENT_SYNC=skip and another sync held the lock
            return _busy(None)
        metadata = materializations[-1].materialization.metadata
        counts = {key: int(metadata[key].value) for key in COUNT_KEYS}
        return JSONResponse({"success": True, "result": {**counts, "runId": run_id}})
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error, kind = "the sync failed", None
    if failures:
        data = failures[-1].step_failure_data.user_failure_data
        if data is not None:
            error = data.description or error
            kind_value = data.metadata.get("failure_kind")
            kind = kind_value.value if kind_value is not None else None
        elif failures[-1].step_failure_data.error is not None:
            error = failures[-1].step_failure_data.error.message.strip().splitlines()[0]
    return JSONResponse(
        {"success": False, "error": error, "runId": run_id},
        status_code=FAILURE_STATUS.get(kind, 500),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model-sync-api", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without authentication (development only; logged loudly)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        verifier = TokenVerifier.from_settings(settings)
    except (SettingsError, ValueError, OSError) as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if verifier is None and not args.insecure_no_auth:
        print(
            "refusing to start without authentication: set MODEL_SYNC_JWT_SECRET, "
            "MODEL_SYNC_JWT_PUBLIC_KEY_FILE or MODEL_SYNC_JWT_JWKS_FILE "
            "(or pass --insecure-no-auth for local development)",
            file=sys.stderr,
        )
        return 2
    if verifier is None:
        logger.warning("!" * 72)
        logger.warning("AUTHENTICATION IS DISABLED (--insecure-no-auth): anyone who can reach")
        logger.warning(
            "http://%s:%s can trigger syncs. Never run this in production.", args.host, args.port
        )
        logger.warning("!" * 72)
    else:
        logger.info("JWT auth: %s", describe(verifier))
    import uvicorn

    uvicorn.run(create_app(settings, verifier), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
