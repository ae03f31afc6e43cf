"""Alembic environment: migrations run on the connection the caller hands over.

``model_sync.store.migrate`` opens the connection (embedded Postgres or
``MODEL_SYNC_DATABASE_URL``), takes an advisory lock so two processes never migrate at once,
and passes it in ``config.attributes["connection"]``.
"""

from alembic import context

from model_sync.store.migrate import VERSION_TABLE
from model_sync.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations with `model-sync migrate` (or model_sync.store.migrate.upgrade), "
        "which resolves the database the same way the sync does"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
