"""The server's store: SQLAlchemy models, Alembic migrations, ingestion and queries."""
