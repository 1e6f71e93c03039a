"""Known errors are one message, never a traceback; a traceback means a bug."""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from agent import cli
from agent.core.errors import ConfigError, KnownError
from agent.service.filedrop import DropCounts, DropFilesFailedError
from agent.service.jobs import DeliveryDeferredError, survey_ingest
from agent.service.runner import _failed
from agent.service.taskjob import TasksDeferredError
from agent.sync.cycle import FieldsNotReadyError
from connectors.common.errors import FatalError, VendorError
from connectors.common.network import UnreachableError
from connectors.hubspot.errors import HubSpotRequestError


@pytest.mark.parametrize(
    "error",
    [
        UnreachableError("hubspot", "api.hubapi.com", 443, "connection refused", "companies.list"),
        FatalError("salesforce", "password login failed: INVALID_LOGIN"),
        HubSpotRequestError(
            "HTTP 403 MISSING_SCOPES: crm.objects.companies.write",
            status=403,
            category="MISSING_SCOPES",
        ),
        FieldsNotReadyError("salesforce", []),
        ConfigError("salesforce.username is missing"),
        DropFilesFailedError("a.jsonl: try 1 of 3 failed: ValueError: x", DropCounts()),
        DeliveryDeferredError("slack: cannot reach slack.com:443: connection refused", {}),
        TasksDeferredError("hubspot: cannot reach api.hubapi.com:443: timed out", {}),
    ],
)
def test_a_job_failing_with_a_known_error_logs_its_message_without_a_traceback(
    error: Exception,
) -> None:
    assert isinstance(error, KnownError)
    with capture_logs() as logs:
        result = _failed("crm_sync", time.perf_counter(), None, {}, error)
    [event] = [e for e in logs if e["event"] == "job_failed"]
    assert event["exc_info"] is None
    assert str(error) in event["error"]
    assert result.ok is False


def test_a_bug_keeps_its_traceback() -> None:
    bug = KeyError("AX_NPS__c")
    with capture_logs() as logs:
        _failed("writeback", time.perf_counter(), None, {}, bug)
    [event] = [e for e in logs if e["event"] == "job_failed"]
    assert event["exc_info"] is bug


def test_a_known_error_reaching_the_command_line_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def command(**_: object) -> None:
        raise UnreachableError("hubspot", "api.hubapi.com", 443, "name not resolved", "owners.list")

    monkeypatch.setattr(cli, "app", command)
    monkeypatch.setattr(cli, "redact_standard_streams", lambda: None)
    monkeypatch.setattr(sys, "argv", ["ax-agent", "crm", "check", "hubspot"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        "error: hubspot: cannot reach api.hubapi.com:443: name not resolved (owners.list)\n"
    )
    assert issubclass(VendorError, KnownError)


def _parts_failed(errors: list[Exception]) -> dict[str, object]:
    """The job_failed event of a survey ingestion whose sources and file drop both failed."""

    def sources(_: object) -> list[object]:
        raise errors[0]

    def scan(*_: object) -> None:
        raise errors[1]

    rt = SimpleNamespace(
        store=None,
        cycle_at=None,
        responses_added=None,
        survey_sources=sources,
        file_drop=SimpleNamespace(scan=scan),
        checkpoints=SimpleNamespace(check=lambda: None),
    )
    with pytest.raises(Exception, match=r"a\.jsonl: try 1 of 3") as raised:
        survey_ingest(rt)  # type: ignore[arg-type]
    with capture_logs() as logs:
        _failed("survey_ingest", time.perf_counter(), None, {}, raised.value)
    [event] = [e for e in logs if e["event"] == "job_failed"]
    return event


def test_a_job_whose_parts_all_failed_with_known_errors_has_no_traceback() -> None:
    drop = DropFilesFailedError("a.jsonl: try 1 of 3 failed: ValueError: x", DropCounts())
    event = _parts_failed([UnreachableError("qualtrics", "q.example", 443, "timed out", "x"), drop])
    assert event["exc_info"] is None
    assert "a.jsonl: try 1 of 3" in str(event["error"])


def test_a_job_with_a_bug_among_its_failed_parts_keeps_the_traceback() -> None:
    drop = DropFilesFailedError("a.jsonl: try 1 of 3 failed: ValueError: x", DropCounts())
    event = _parts_failed([KeyError("surveyId"), drop])
    assert isinstance(event["exc_info"], Exception)
