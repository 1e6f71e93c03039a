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
    """A PostgreSQL engine on a schema of its own (its search_path), dropped afterwards."""
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
    # the schema is the connection's search_path, as a deployment sets it: the bulk
    # paths' own SQL (COPY into a staging table) names tables without a schema
    eng = create_engine(base.url.update_query_dict({"options": f"-csearch_path={schema}"}))
    metadata.create_all(eng)
    yield eng
    eng.dispose()
    with base.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    base.dispose()
