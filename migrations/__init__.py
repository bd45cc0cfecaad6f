"""Alembic migration environment for Chibify's database (see ``storage.migrate`` and docs/storage.md).

This is a package so the scripts can be found by import when chibify is installed non-editable.
"""
