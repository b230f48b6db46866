"""Alembic's environment: migrations run on the connection :func:`..database.migrate` passes in."""

from __future__ import annotations

from alembic import context

from tracelet_core.server.store.models import Base


def run_migrations() -> None:
    """Run the pending migrations on the connection in Alembic's config."""
    connection = context.config.attributes["connection"]
    # render_as_batch: SQLite alters tables by copying them; Alembic's batch mode does that for us.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


# Alembic executes this file under a name of its own; imported as a module (pytest's doctest
# collection, mypy), it only defines the function.
if __name__ != "tracelet_core.server.store.migrations.env":
    run_migrations()
