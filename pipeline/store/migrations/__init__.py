"""Alembic schema migrations of the store; ``versions/`` holds one revision per change."""
