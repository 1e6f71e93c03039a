"""The weekly Slack digest against a loopback fake of Slack's Web API (files upload v2)."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from slack_sdk import WebClient
from structlog.testing import capture_logs
from werkzeug import Request, Response

from agent.config.settings import SlackSettings
from agent.report.digest import DIGEST_TITLE, digest_text, driver_chart, weekly_digest
from connectors.common.errors import FatalError, RateLimitedError, RetriableError
from connectors.slack.notifier import make_client
from connectors.slack.report import DIGEST_FILENAME, post_driver_chart, post_weekly_digest
from tests.report_support import load_fixture

TOKEN = "xoxb-test-0000-not-a-real-token"
CHANNEL = "C0123456789"
FILE_ID = "F123ABC456"
UPLOAD_PATH = "/upload/v1/ABC123456"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Recorder:
    """Keeps what the fake received, per step, to assert on after the call."""

    def __init__(self) -> None:
        self.url_request: dict[str, str] = {}
        self.upload: bytes = b""
        self.complete: dict[str, str] = {}
        self.auth: list[str] = []


@pytest.fixture
def client(httpserver: HTTPServer) -> WebClient:
    """The client the product builds: slack_sdk's retry handlers are the one retry layer."""
    settings = SlackSettings(bot_token=SecretStr(TOKEN), base_url=httpserver.url_for("/api/"))
    return make_client(settings.model_copy(update={"max_retries": 1, "timeout_seconds": 5}))


@pytest.fixture
def bare_client(httpserver: HTTPServer) -> WebClient:
    """A client without retry handlers: failures reach the digest unretried."""
    return WebClient(token=TOKEN, base_url=httpserver.url_for("/api/"), retry_handlers=[])


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _expect_url(httpserver: HTTPServer, recorder: Recorder) -> None:
    def handler(request: Request) -> Response:
        recorder.url_request = dict(request.form)
        recorder.auth.append(request.headers.get("Authorization", ""))
        body = {"ok": True, "upload_url": httpserver.url_for(UPLOAD_PATH), "file_id": FILE_ID}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_ordered_request(
        "/api/files.getUploadURLExternal", method="POST"
    ).respond_with_handler(handler)


def _expect_upload(httpserver: HTTPServer, recorder: Recorder) -> None:
    def handler(request: Request) -> Response:
        recorder.upload = request.get_data()
        return Response(f"OK - {len(recorder.upload)}", content_type="text/plain")

    httpserver.expect_ordered_request(UPLOAD_PATH, method="POST").respond_with_handler(handler)


def _expect_complete(httpserver: HTTPServer, recorder: Recorder, error: str | None = None) -> None:
    def handler(request: Request) -> Response:
        recorder.complete = dict(request.form)
        recorder.auth.append(request.headers.get("Authorization", ""))
        files = json.loads(request.form["files"])
        if error is not None:
            return Response(
                json.dumps({"ok": False, "error": error}), content_type="application/json"
            )
        body = {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in files]}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_ordered_request(
        "/api/files.completeUploadExternal", method="POST"
    ).respond_with_handler(handler)


def test_posts_headlines_and_driver_png_through_the_three_upload_steps(
    httpserver: HTTPServer, client: WebClient, recorder: Recorder
) -> None:
    doc = load_fixture("three-accounts").doc
    _expect_url(httpserver, recorder)
    _expect_upload(httpserver, recorder)
    _expect_complete(httpserver, recorder)

    with capture_logs() as logs:
        posted = post_weekly_digest(client, CHANNEL, weekly_digest(doc))

    httpserver.check_assertions()
    assert posted.file_id == FILE_ID
    assert posted.channel == CHANNEL
    assert recorder.upload.startswith(PNG_MAGIC)
    assert recorder.url_request["filename"] == DIGEST_FILENAME
    assert recorder.url_request["length"] == str(len(recorder.upload))
    assert "revenue" in recorder.url_request["alt_txt"]
    assert recorder.complete["channel_id"] == CHANNEL
    assert recorder.complete["initial_comment"] == digest_text(doc)
    assert "NPS: *35.7*" in recorder.complete["initial_comment"]
    files = json.loads(recorder.complete["files"])
    assert [f["id"] for f in files] == [FILE_ID]
    assert recorder.auth == [f"Bearer {TOKEN}"] * 2
    event = next(e for e in logs if e["event"] == "slack_digest.posted")
    assert event["file_id"] == FILE_ID
    assert event["channel"] == CHANNEL
    assert TOKEN not in repr(logs)


def test_rate_limit_is_retried_by_the_clients_handler_then_posts(
    httpserver: HTTPServer, client: WebClient, recorder: Recorder
) -> None:
    doc = load_fixture("seed_example").doc
    httpserver.expect_ordered_request(
        "/api/files.getUploadURLExternal", method="POST"
    ).respond_with_json(
        {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
    )
    _expect_url(httpserver, recorder)
    _expect_upload(httpserver, recorder)
    _expect_complete(httpserver, recorder)

    posted = post_weekly_digest(client, CHANNEL, weekly_digest(doc))

    httpserver.check_assertions()
    assert posted.file_id == FILE_ID
    assert recorder.upload.startswith(PNG_MAGIC)


def test_rate_limit_left_over_is_reported_with_retry_after(
    httpserver: HTTPServer, bare_client: WebClient
) -> None:
    doc = load_fixture("three-accounts").doc
    httpserver.expect_ordered_request(
        "/api/files.getUploadURLExternal", method="POST"
    ).respond_with_json(
        {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "7"}
    )

    with pytest.raises(RateLimitedError) as raised:
        post_weekly_digest(bare_client, CHANNEL, weekly_digest(doc))

    httpserver.check_assertions()
    assert raised.value.retry_after == 7.0
    assert raised.value.status == 429


def test_refusal_is_fatal_and_named_without_the_token(
    httpserver: HTTPServer, client: WebClient, recorder: Recorder
) -> None:
    doc = load_fixture("three-accounts").doc
    _expect_url(httpserver, recorder)
    _expect_upload(httpserver, recorder)
    _expect_complete(httpserver, recorder, error="not_in_channel")

    with capture_logs() as logs, pytest.raises(FatalError, match="not_in_channel") as raised:
        post_weekly_digest(client, CHANNEL, weekly_digest(doc))

    httpserver.check_assertions()
    assert TOKEN not in str(raised.value)
    assert TOKEN not in repr(logs)
    assert not [e for e in logs if e["event"] == "slack_digest.posted"]


def test_failing_upload_url_is_a_retriable_error(
    httpserver: HTTPServer, client: WebClient, recorder: Recorder
) -> None:
    doc = load_fixture("three-accounts").doc
    _expect_url(httpserver, recorder)
    httpserver.expect_ordered_request(UPLOAD_PATH, method="POST").respond_with_data(
        "upstream down", status=503
    )

    with pytest.raises(RetriableError, match="HTTP 503") as raised:
        post_weekly_digest(client, CHANNEL, weekly_digest(doc))

    httpserver.check_assertions()
    assert not isinstance(raised.value, RateLimitedError)
    assert raised.value.status == 503


def test_server_error_is_retried_by_the_client(
    httpserver: HTTPServer, client: WebClient, recorder: Recorder
) -> None:
    doc = load_fixture("three-accounts").doc
    httpserver.expect_ordered_request(
        "/api/files.getUploadURLExternal", method="POST"
    ).respond_with_json({"ok": False, "error": "internal_error"}, status=500)
    _expect_url(httpserver, recorder)
    _expect_upload(httpserver, recorder)
    _expect_complete(httpserver, recorder)

    assert post_weekly_digest(client, CHANNEL, weekly_digest(doc)).file_id == FILE_ID
    httpserver.check_assertions()


def test_server_error_without_retries_is_retriable(
    httpserver: HTTPServer, bare_client: WebClient
) -> None:
    doc = load_fixture("three-accounts").doc
    httpserver.expect_ordered_request(
        "/api/files.getUploadURLExternal", method="POST"
    ).respond_with_json({"ok": False, "error": "internal_error"}, status=500)

    with pytest.raises(RetriableError, match="internal_error"):
        post_weekly_digest(bare_client, CHANNEL, weekly_digest(doc))


def test_the_chart_alone_goes_into_a_messages_thread(
    httpserver: HTTPServer, client: WebClient, recorder: Recorder
) -> None:
    doc = load_fixture("three-accounts").doc
    _expect_url(httpserver, recorder)
    _expect_upload(httpserver, recorder)
    _expect_complete(httpserver, recorder)

    posted = post_driver_chart(
        client,
        CHANNEL,
        driver_chart(doc.drivers),
        thread_ts="1800000001.000001",
        title=DIGEST_TITLE,
    )

    httpserver.check_assertions()
    assert (posted.channel, posted.file_id) == (CHANNEL, FILE_ID)
    assert recorder.complete["channel_id"] == CHANNEL
    assert recorder.complete["thread_ts"] == "1800000001.000001"
    assert "initial_comment" not in recorder.complete  # the parent message has the figures
    assert recorder.upload.startswith(PNG_MAGIC)
    assert recorder.url_request["filename"] == DIGEST_FILENAME


def test_a_failed_chart_step_names_its_method_status_and_error_field(
    httpserver: HTTPServer, bare_client: WebClient, recorder: Recorder
) -> None:
    doc = load_fixture("three-accounts").doc
    _expect_url(httpserver, recorder)
    _expect_upload(httpserver, recorder)
    httpserver.expect_ordered_request(
        "/api/files.completeUploadExternal", method="POST"
    ).respond_with_json({"ok": False}, status=502)

    with pytest.raises(RetriableError) as raised:
        post_driver_chart(
            bare_client,
            CHANNEL,
            driver_chart(doc.drivers),
            thread_ts="1800000001.000001",
            title=DIGEST_TITLE,
        )

    assert str(raised.value).endswith(
        "chart upload: files.completeUploadExternal: HTTP 502, no error field in the answer"
    )
    assert "unknown_error" not in str(raised.value)


def test_a_refused_chart_names_the_error_field(
    httpserver: HTTPServer, client: WebClient, recorder: Recorder
) -> None:
    doc = load_fixture("three-accounts").doc
    _expect_url(httpserver, recorder)
    _expect_upload(httpserver, recorder)
    _expect_complete(httpserver, recorder, error="not_in_channel")

    with pytest.raises(FatalError) as raised:
        post_driver_chart(
            client,
            CHANNEL,
            driver_chart(doc.drivers),
            thread_ts="1800000001.000001",
            title=DIGEST_TITLE,
        )

    assert str(raised.value).endswith(
        "chart upload: files.completeUploadExternal: HTTP 200, error not_in_channel"
    )
