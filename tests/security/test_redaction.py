"""The one redaction step: every encoded form of a secret, on every path to a person."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import create_engine, insert, select

from agent.alerts.model import AlertContent, Destination
from agent.alerts.pipeline import admin_rules_alert
from agent.alerts.repo import AlertRepo, OutboxRecord
from agent.cli.redacted import RedactingStream
from agent.core.redaction import MASK, redact, register_secret_text
from agent.rules.loader import RuleError, RuleLoadError
from agent.service.health import Health
from agent.state import schema
from agent.state.store import StateStore

SECRET = 'tok/3n+"with\\odd=chars-91'
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _registered() -> None:
    register_secret_text(SECRET)


@pytest.mark.parametrize(
    "shown",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
    ],
    ids=["raw", "url", "url-plus", "json", "base64", "base64url"],
)
def test_every_encoded_form_is_masked(shown: str) -> None:
    assert redact(f"error: HTTP 500: bad auth {shown} (retry)") == (
        f"error: HTTP 500: bad auth {MASK} (retry)"
    )


@pytest.mark.parametrize("user", ["a", "ab", "abc", "admin@acme.example"])
def test_a_secret_inside_a_basic_auth_header_is_masked(user: str) -> None:
    header = base64.b64encode(f"{user}:{SECRET}".encode()).decode()
    shown = redact(f"Authorization: Basic {header}")
    assert MASK in shown
    assert base64.b64encode(SECRET.encode()).decode()[2:-4] not in shown


def test_cli_streams_mask_what_is_written(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with target.open("w", encoding="utf-8") as handle:
        stream = RedactingStream(handle)
        stream.write(f"error: hubspot: HTTP 500: bad auth Bearer {SECRET}\n")
        stream.flush()
    assert (
        target.read_text(encoding="utf-8") == f"error: hubspot: HTTP 500: bad auth Bearer {MASK}\n"
    )


def test_the_admin_alert_of_invalid_rules_is_masked(tmp_path: Path) -> None:
    error = RuleLoadError([RuleError(tmp_path / "r.yaml", 3, 5, f"unknown channel '{SECRET}'")])
    record = admin_rules_alert(error, "C-admin", NOW)
    assert SECRET not in record.content.text
    assert MASK in record.content.text


def test_outbox_errors_are_stored_masked(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    schema.metadata.create_all(engine)
    repo = AlertRepo(engine)
    content = AlertContent(
        kind="admin", alert_id="admin:x", rule_id="admin", title="t", text="x", severity="info"
    )
    repo.record([OutboxRecord(content, "admin", "x", Destination(channel="C1"), NOW)], [])
    repo.mark_error("admin:x", f"chat.postMessage: HTTP 500: {SECRET}")
    with engine.connect() as conn:
        stored = conn.execute(select(schema.alert_outbox.c.last_error)).scalar_one()
    assert stored == f"chat.postMessage: HTTP 500: {MASK}"
    repo.mark_status("admin:x", "failed", f"gave up: {SECRET}")
    with engine.connect() as conn:
        stored = conn.execute(select(schema.alert_outbox.c.last_error)).scalar_one()
    assert stored == f"gave up: {MASK}"
    engine.dispose()


def test_readyz_details_are_masked_even_for_rows_stored_before(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with store.engine.begin() as conn:  # a row written before the secret was configured
            conn.execute(
                insert(schema.cycles).values(
                    job="crm_sync",
                    started_at=NOW,
                    finished_at=NOW,
                    status="failed",
                    counts={},
                    error=f"HTTP 401: bad auth Bearer {SECRET}",
                )
            )
        ready, details = Health(store, ["crm_sync"]).ready()
    finally:
        store.close()
    assert not ready
    assert details["failed_jobs"] == {"crm_sync": f"HTTP 401: bad auth Bearer {MASK}"}
