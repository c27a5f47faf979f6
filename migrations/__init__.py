"""Alembic migrations; configured in code by bot.migrate (no alembic.ini)."""
