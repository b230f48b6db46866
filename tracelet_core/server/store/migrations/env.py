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


# Alembic runs this file with its context set up; imported any other way (pytest's doctest collection),
# there is no context and the file only defines the function.
if getattr(context, "config", None) is not None:
    run_migrations()
