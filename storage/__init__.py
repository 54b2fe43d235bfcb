"""Persistence: SQLModel tables, the async database, encryption at rest, and migrations."""
