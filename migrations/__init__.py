"""Alembic migrations, shared unchanged by SQLite and PostgreSQL + PostGIS."""
