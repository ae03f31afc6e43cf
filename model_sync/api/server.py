"""``model-sync-api``: the API process — settings and key material checked before serving,
uvicorn with a bounded request head, the Dagster instance's run submitter."""

import argparse
import logging
import os
import sys
from pathlib import Path

from model_sync.api.app import MAX_HEADER_BYTES, SyncBackend, create_app
from model_sync.auth import ConfigurationError, TokenVerifier, describe
from model_sync.settings import Settings, SettingsError

logger = logging.getLogger("model_sync.api")


def header_limited_h11():
    """uvicorn's h11 protocol with the request head capped at MAX_HEADER_BYTES: h11 stops
    reading at the cap (memory stays bounded, no token is parsed) and hints 431, which this
    answers instead of uvicorn's generic 400."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Connection(h11.Connection):
        error_status_hint = 400

        def next_event(self):
            try:
                return super().next_event()
            except h11.RemoteProtocolError as error:
                self.error_status_hint = error.error_status_hint
                raise

    class Protocol(H11Protocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.conn = Connection(h11.SERVER, MAX_HEADER_BYTES)

        def send_400_response(self, msg: str) -> None:
            if self.conn.error_status_hint != 431:
                return super().send_400_response(msg)
            body = b'{"error": "request header fields too large"}'
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n".encode()
                + b"connection: close\r\n\r\n"
                + body
            )
            self.transport.close()

    return Protocol


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="model-sync-api",
        description="Trigger an AI model catalog sync and read its stats, behind JWT bearer auth.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workspace",
        type=Path,
        default=None,
        help="workspace.yaml of the deployment (default: ./workspace.yaml if present), so API "
        "runs use the same code location as the webserver and daemon",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without authentication (development only; logged loudly)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        verifier = TokenVerifier.from_settings(settings.api)
    except (SettingsError, ConfigurationError) as error:
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
    if not os.environ.get("DAGSTER_HOME"):
        print(
            "configuration error: DAGSTER_HOME is not set: API syncs are runs of the Dagster "
            "instance shared with the webserver and daemon (README, 'Running in production')",
            file=sys.stderr,
        )
        return 2
    workspace = args.workspace or (
        Path("workspace.yaml") if Path("workspace.yaml").is_file() else None
    )
    if workspace is not None and not workspace.is_file():
        print(f"configuration error: --workspace {workspace}: no such file", file=sys.stderr)
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

    from dagster import DagsterInstance

    from model_sync.dagster_runs import CodeLocationError, RunSubmitter

    instance = DagsterInstance.get()
    try:
        submitter = RunSubmitter(instance, workspace)
    except CodeLocationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    import uvicorn

    try:
        uvicorn.run(
            create_app(settings, verifier, SyncBackend(instance, submitter)),
            host=args.host,
            port=args.port,
            http=header_limited_h11(),
            # SIGTERM: stop taking requests, give running ones a few seconds, then go.
            timeout_graceful_shutdown=5,
        )
    finally:
        submitter.close()
    return 0
