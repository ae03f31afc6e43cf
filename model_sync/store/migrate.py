"""Apply the Alembic migrations: before every sync writes, and by ``model-sync migrate``.

Upgrades are additive and run in place; the database is never dropped, and user-owned columns
are never touched by a migration.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Not Alembic's default "alembic_version": Dagster's own Postgres storage keeps one of those, and
# the catalog may share a database with it.
VERSION_TABLE = "model_sync_schema_version"
# Two processes (a scheduled run and a manual one) must not both create the tables.
_MIGRATION_LOCK_KEY = 0x6D5F6D69  # "m_mi"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the schema to ``revision``; a no-op when it is already there."""
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        if revision == "head" and current_revision(connection) == head_revision():
            return head_revision()
        command.upgrade(alembic_config(connection), revision)
        return current_revision(connection)
