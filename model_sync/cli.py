"""``model-sync``: the few operations that are not a Dagster run.

``model-sync sync`` is only a shorthand for the README's main command; the sync itself always
runs through Dagster so it shows up in the run history like any other materialization.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from model_sync.settings import Settings, SettingsError
from model_sync.store import database, migrate

MATERIALIZE_COMMAND = [
    "dagster",
    "asset",
    "materialize",
    "-m",
    "model_sync.definitions",
    "--select",
    "*",
]


def _sync(_settings: Settings) -> int:
    executable = shutil.which("dagster")
    if executable is None:
        print("the `dagster` command is not on PATH; install the project first", file=sys.stderr)
        return 2
    return subprocess.call([executable, *MATERIALIZE_COMMAND[1:]])


def _migrate(settings: Settings) -> int:
    engine = database.engine_for(
        database.resolve_database_url(settings.database_url, settings.data_dir)
    )
    revision = migrate.upgrade(engine)
    print(f"catalog schema is at revision {revision}")
    return 0


def _backfill(settings: Settings, folder: str) -> int:
    from decimal import Decimal

    from model_sync.backfill import backfill
    from model_sync.store.sync import SyncRefused

    engine = database.engine_for(
        database.resolve_database_url(settings.database_url, settings.data_dir)
    )
    migrate.upgrade(engine)
    try:
        backfill(
            engine,
            Path(folder),
            max_deactivation_share=settings.max_deactivation_share,
            anomaly_fail_factor=Decimal(str(settings.anomaly_fail_factor)),
            anomaly_warn_factor=Decimal(str(settings.anomaly_warn_factor)),
        )
    except (SyncRefused, ValueError) as error:
        print(f"backfill stopped: {error}", file=sys.stderr)
        return 1
    return 0


def _db_url(settings: Settings) -> int:
    if settings.database_url:
        print(settings.database_url)
    else:
        print(database.start_embedded_postgres(settings.data_dir))
    return 0


def _stop_db(settings: Settings) -> int:
    if settings.database_url:
        print("MODEL_SYNC_DATABASE_URL is set: there is no embedded server to stop")
        return 0
    stopped = database.stop_embedded_postgres(settings.data_dir)
    print("stopped the embedded PostgreSQL" if stopped else "no embedded PostgreSQL is running")
    return 0


COMMANDS = {
    "sync": (
        _sync,
        "run the full sync: dagster asset materialize -m model_sync.definitions --select '*'",
    ),
    "migrate": (_migrate, "upgrade the catalog schema to the latest revision"),
    "backfill": (
        _backfill,
        "load a folder of saved responses, oldest first, into the catalog and its history",
    ),
    "db-url": (_db_url, "print the catalog database URL (starts the embedded server if needed)"),
    "stop-db": (_stop_db, "stop the embedded PostgreSQL server"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model-sync", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_handler, help_text) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text)
        if name == "backfill":
            command.add_argument("folder", help="folder of saved /v1/models responses")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    handler, _help = COMMANDS[args.command]
    if args.command == "backfill":
        return handler(settings, args.folder)
    return handler(settings)


if __name__ == "__main__":
    sys.exit(main())
