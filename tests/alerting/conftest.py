"""Fixtures of the alerting tests: a SQLite state store and the loopback Slack fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_slack import FakeSlack
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, create_engine

from agent.alerts.repo import AlertRepo
from agent.state.schema import metadata


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def repo(engine: Engine) -> AlertRepo:
    return AlertRepo(engine)


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    return FakeSlack(httpserver).install()
