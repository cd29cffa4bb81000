"""Alembic revisions, ``NNNN_slug.py`` with ``revision = "NNNN"``, applied in order."""
