"""Fixtures of the alerting tests: a SQLite state store and the loopback Slack fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_slack import FakeSlack
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, create_engine

from agent.alerts.repo import AlertRepo
from agent.state.schema import metadata


@pytest.fixture
def repo(engine: Engine) -> AlertRepo:
    return AlertRepo(engine)


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    return FakeSlack(httpserver).install()


_DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A PostgreSQL engine on a schema of its own, dropped afterwards."""
    import os
    import uuid

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    configured = os.environ.get("AX_TEST_POSTGRES_URL")
    base = create_engine(configured or _DEFAULT_PG)
    try:
        with base.connect():
            pass
    except OperationalError:
        base.dispose()
        if configured:
            raise
        pytest.skip("no PostgreSQL: AX_TEST_POSTGRES_URL is unset and none answers on 5432")
    schema = f"ax_alerts_{uuid.uuid4().hex[:12]}"
    with base.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = base.execution_options(schema_translate_map={None: schema})
    metadata.create_all(eng)
    yield eng
    with base.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    base.dispose()
