"""Alembic's environment for the rp_eval store: run by `rp_eval.store.migrate` with the open connection."""

from __future__ import annotations

from alembic import context

from rp_eval.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
