"""Durable state in a real database through SQLAlchemy (SQLite file or PostgreSQL)."""
