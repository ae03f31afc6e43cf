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
from model_sync.store import database

MATERIALIZE_COMMAND = [
    "dagster",
    "asset",
    "materialize",
    "-m",
    "model_sync.definitions",
    "--select",
    "*",
]


def _writer_engine(settings: Settings):
    url = database.resolve_database_url(settings.database_url, settings.embedded_data_dir())
    return database.migrated_engine(url, settings.db_connect_timeout_seconds)


def _sync(settings: Settings, args: argparse.Namespace) -> int:
    executable = shutil.which("dagster")
    if executable is None:
        print("the `dagster` command is not on PATH; install the project first", file=sys.stderr)
        return 2
    return subprocess.call([executable, *MATERIALIZE_COMMAND[1:]])


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from model_sync.store import migrate

    url = database.resolve_database_url(settings.database_url, settings.embedded_data_dir())
    revision = migrate.upgrade(database.engine_for(url, settings.db_connect_timeout_seconds))
    print(f"catalog schema is at revision {revision}")
    return 0


def _replay_errors():
    from model_sync.gateway import GatewayError
    from model_sync.service import SyncFailed
    from model_sync.store.sync import SyncRefused

    return (SyncFailed, SyncRefused, GatewayError, ValueError)


def _backfill(settings: Settings, args: argparse.Namespace) -> int:
    from model_sync.backfill import backfill
    from model_sync.sources import get_source

    source_name = args.source or settings.source_names[0]
    try:
        source = get_source(source_name)
    except KeyError as error:
        print(f"backfill stopped: {error.args[0]}", file=sys.stderr)
        return 2
    try:
        backfill(_writer_engine(settings), Path(args.folder), source=source, policy=settings.sync)
    except _replay_errors() as error:
        print(f"backfill stopped: {error}", file=sys.stderr)
        return 1
    return 0


def _rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from model_sync.backfill import rebuild

    engine = _writer_engine(settings)
    archive_engine = None
    if args.from_url:
        archive_engine = database.engine_for(
            database.sqlalchemy_url(args.from_url), settings.db_connect_timeout_seconds
        )
    try:
        rebuild(engine, archive_engine=archive_engine, policy=settings.sync)
    except _replay_errors() as error:
        print(f"rebuild stopped: {error}", file=sys.stderr)
        return 1
    return 0


def _reprice(settings: Settings, args: argparse.Namespace) -> int:
    import csv
    from datetime import UTC, datetime

    import psycopg
    from sqlalchemy.exc import SQLAlchemyError

    from model_sync.store.reprice import parse_time, reprice_csv

    try:
        at = datetime.now(UTC) if args.at == "now" else parse_time(args.at)
    except ValueError as error:
        print(f"reprice: --at {args.at!r}: {error}", file=sys.stderr)
        return 2
    url = database.resolve_database_url(settings.database_url, settings.embedded_data_dir())
    engine = database.engine_for(url, settings.db_connect_timeout_seconds)

    def price(out) -> int:
        with open(args.usage, newline="") as usage:
            return reprice_csv(engine, csv.DictReader(usage), at, out)

    # The priced file appears whole or not at all: written beside --output and renamed over
    # it on success, so a bad record or a lost database never truncates an existing file.
    partial = Path(f"{args.output}.partial") if args.output else None
    try:
        if partial is None:
            count = price(sys.stdout)
        else:
            with partial.open("w", newline="") as out:
                count = price(out)
            partial.replace(args.output)
    except (OSError, ValueError) as error:
        reason = str(error)
    except (SQLAlchemyError, psycopg.Error) as error:
        reason = database.describe_database_error(error)
    else:
        print(
            f"priced {count} usage records at their time and at {at.isoformat()}", file=sys.stderr
        )
        return 0
    if partial is not None:
        partial.unlink(missing_ok=True)
    print(f"reprice stopped: {reason}", file=sys.stderr)
    return 1


def _db_url(settings: Settings, args: argparse.Namespace) -> int:
    if settings.database_url:
        print(settings.database_url)
    else:
        print(database.start_embedded_postgres(settings.embedded_data_dir()))
    return 0


def _stop_db(settings: Settings, args: argparse.Namespace) -> int:
    if settings.database_url:
        print("MODEL_SYNC_DATABASE_URL is set: there is no embedded server to stop")
        return 0
    stopped = database.stop_embedded_postgres(settings.embedded_data_dir())
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
    "rebuild": (
        _rebuild,
        "rebuild a fresh catalog's history from the response archive, in capture order",
    ),
    "reprice": (
        _reprice,
        "price a CSV of past usage at the time each record ran and at another time",
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
            command.add_argument("folder", help="folder of saved model-list responses")
            command.add_argument(
                "--source", help="which source the files come from (default: the first enabled)"
            )
        if name == "rebuild":
            command.add_argument(
                "--from",
                dest="from_url",
                help="postgresql:// URL of the catalog whose archive to replay "
                "(default: this catalog's own archive)",
            )
        if name == "reprice":
            command.add_argument(
                "usage",
                help="CSV: source, model_id, ran_at, and meter columns (input_tokens, "
                "output_tokens, cache_read_tokens, cache_write_tokens, web_search_calls, "
                "images, video_seconds, audio_seconds, characters), optional qualifiers (JSON)",
            )
            command.add_argument("--at", default="now", help="the other time (ISO-8601, or now)")
            command.add_argument("--output", help="CSV to write (default: standard output)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    handler, _help = COMMANDS[args.command]
    return handler(settings, args)


if __name__ == "__main__":
    sys.exit(main())
