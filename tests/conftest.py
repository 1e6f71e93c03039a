"""Shared fixtures: real databases for the state store (a SQLite file and PostgreSQL).

PostgreSQL comes from ``AX_TEST_POSTGRES_URL`` (default: the local server). Each test
gets its own schema (``search_path`` set in the URL), dropped afterwards. Tests that
need it are marked ``postgres``; they skip only when the variable is unset and no
server answers, and never skip in CI (``CI=true``): there a missing server fails.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from agent.state.schema import metadata
from agent.state.store import StateStore

POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@functools.cache
def _postgres_probe() -> tuple[str, str | None]:
    """(base URL, why it is unusable or None), checked once per test session."""
    url = os.environ.get("AX_TEST_POSTGRES_URL") or POSTGRES_DEFAULT
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means "no usable server"
        return url, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return url, None


def _postgres_base() -> str:
    url, problem = _postgres_probe()
    if problem is None:
        return url
    safe = make_url(url).render_as_string(hide_password=True)
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("AX_TEST_POSTGRES_URL"):
        pytest.fail(f"PostgreSQL at {safe} is required here but unusable: {problem}")
    pytest.skip(f"AX_TEST_POSTGRES_URL is unset and no PostgreSQL answers at {safe}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite state database file in a fresh temporary folder."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = _postgres_base()
    schema = f"ax_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty state database, once per dialect."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    """A migrated state store, once on SQLite and once on PostgreSQL."""
    with StateStore.open(state_url) as opened:
        yield opened


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite state database with every table (no migrations run)."""
    eng = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    metadata.create_all(eng)
    yield eng
    eng.dispose()
