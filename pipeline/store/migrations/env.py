"""Alembic environment: runs on the connection the store passes in, never from an ini file.

``pipeline.store.migrate`` puts an open connection (already inside its transaction) into
``config.attributes["connection"]``; the revisions run on it, so the whole upgrade commits or
rolls back together with the stamping of a pre-Alembic database.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
# render_as_batch: revisions (and autogenerate drafts) alter tables in batch mode, which
# SQLite needs for anything past ADD COLUMN; on PostgreSQL batch mode is plain ALTER TABLE.
context.configure(connection=connection, render_as_batch=True, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
