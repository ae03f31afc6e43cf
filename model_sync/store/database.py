"""Where the catalog lives: a configured Postgres URL, or an embedded server on this machine.

A new user should be able to try the project with nothing installed but Python, so when
``MODEL_SYNC_DATABASE_URL`` is unset the project starts a private PostgreSQL from the
``pgserver`` package (it ships the server binaries) in a data folder that persists between
runs. The server keeps running after the process exits, so the logged psql URL works and the
next run reuses it instead of paying for a start-up.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from dagster import get_dagster_logger
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

# Inside a run this lands in the run's event log (and so in the CLI output and the UI).
logger = get_dagster_logger("model_sync")

EMBEDDED_DATABASE = "postgres"


def sqlalchemy_url(database_url: str) -> str:
    """Accept the usual ``postgresql://`` / ``postgres://`` forms and pin the psycopg 3 driver."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    if url.get_backend_name() != "postgresql":
        raise ValueError(
            f"MODEL_SYNC_DATABASE_URL must be a PostgreSQL URL, got {url.get_backend_name()!r}"
        )
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def embedded_pgdata(data_dir: Path) -> Path:
    return Path(data_dir) / "pgdata"


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded server and return its libpq URL (once per process)."""
    return _embedded_url(Path(data_dir).absolute())


@cache
def _embedded_url(data_dir: Path) -> str:
    import pgserver

    pgdata = embedded_pgdata(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    reused = (pgdata / "PG_VERSION").exists()
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    uri = server.get_uri(EMBEDDED_DATABASE)
    logger.info(
        "%s embedded PostgreSQL in %s; connect with: psql '%s'",
        "Reusing" if reused else "Started",
        pgdata,
        uri,
    )
    return uri


def stop_embedded_postgres(data_dir: Path) -> bool:
    """Stop the embedded server if one runs for ``data_dir``; return whether one did."""
    import pgserver

    pgdata = embedded_pgdata(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    # A handle in "stop" mode stops the server when this process lets go of it.
    pgserver.get_server(pgdata, cleanup_mode="stop")
    return True


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """The URL the sync writes to: the configured one, else the embedded server's."""
    return sqlalchemy_url(database_url or start_embedded_postgres(data_dir))


_engines: dict[tuple[str, int], Engine] = {}
_migrated: set[str] = set()
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10


def engine_for(url: str, connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_SECONDS) -> Engine:
    """One pooled engine per URL and process; ``pool_pre_ping`` survives a restarted server.

    Every connection has a connect timeout: a server that accepts TCP and never answers would
    otherwise hold a caller for minutes (libpq waits forever, the kernel ~2 min).
    """
    key = (url, connect_timeout_seconds)
    engine = _engines.get(key)
    if engine is None:
        engine = _engines[key] = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=2,
            max_overflow=2,
            pool_timeout=connect_timeout_seconds,
            connect_args={"connect_timeout": connect_timeout_seconds},
        )
    return engine


def migrated_engine(
    url: str, connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_SECONDS
) -> Engine:
    """The engine, with the schema upgraded to head once per process (writers only: read paths
    use :func:`engine_for`, so a read-only role can serve them)."""
    from model_sync.store import migrate

    engine = engine_for(url, connect_timeout_seconds)
    if url not in _migrated:
        migrate.upgrade(engine)
        _migrated.add(url)
    return engine


def dispose_engines() -> None:
    """Close every pooled connection this process holds (tests, forked workers)."""
    while _engines:
        _engines.popitem()[1].dispose()
    _migrated.clear()


# SQLSTATE classes and codes that deserve a plain-words explanation.
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"
_CONNECTION_CLASSES = ("08", "57P")


def describe_database_error(error: BaseException) -> str:
    """One line an operator can act on, without SQLAlchemy's statement dump and links."""
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    sqlstate = getattr(original, "sqlstate", None) or ""
    first_line = (str(original).strip().splitlines() or [""])[0]
    if sqlstate == _LOCK_NOT_AVAILABLE:
        return (
            "timed out waiting for a lock held by another session "
            f"(MODEL_SYNC_LOCK_TIMEOUT_SECONDS); nothing was written: {first_line}"
        )
    if sqlstate == _QUERY_CANCELED:
        return (
            "a statement ran past MODEL_SYNC_STATEMENT_TIMEOUT_SECONDS and was cancelled; "
            f"nothing was written: {first_line}"
        )
    if sqlstate.startswith(_CONNECTION_CLASSES) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    ):
        return f"lost the connection to the catalog database; nothing was written: {first_line}"
    return f"{type(original).__name__}: {first_line}"
