"""Persistence for Báo cáo thôn: SQLModel tables, sessions, repositories and Alembic migrations."""
