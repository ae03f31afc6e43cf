"""HTTP API: trigger a sync, read its stats and price usage, behind JWT bearer auth.

It keeps the NestJS module's two endpoints for the services that call them. A sync triggered
here is a run of the same Dagster job as the schedule, submitted to the instance in
``$DAGSTER_HOME`` (queued, limited and launched like every other run) and tagged
``model_sync/triggered_by=api``. One sync at a time, across replicas: the check for a running
sync and the submission happen under a Postgres advisory lock.

Start it with ``model-sync-api [--host 127.0.0.1] [--port 8000] [--workspace workspace.yaml]``.
``app`` builds the routes, ``schemas`` holds the request and response bodies, ``costs`` the
usage-pricing endpoint's body handling, ``server`` the process (uvicorn, start-up refusals).
"""

from model_sync.api.app import SyncBackend, create_app
from model_sync.api.server import main

__all__ = ["SyncBackend", "create_app", "main"]
