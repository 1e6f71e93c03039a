"""The weekly digest in Slack: the headline figures and the driver chart.

Uploaded with ``files_upload_v2`` (files.getUploadURLExternal -> the upload URL ->
files.completeUploadExternal). Two ways: ``post_weekly_digest`` posts one message,
the headline figures as the file's initial comment; ``post_driver_chart`` puts the
chart alone into the thread of a message already posted (the weekly digest rule's
alert, ``attach: driver_chart``, whose message carries the figures). What is posted
comes drawn and written (``agent.core.messages.Digest`` and ``Chart``): this module
only carries it.
The ``WebClient`` is injected (``connectors.slack.notifier.make_client``): it owns
the token, the base URL and the one retry layer, slack_sdk's own handlers for rate
limits, server errors and dropped connections. This module adds no second one; what
still fails is raised as the shared vendor error classes, so the caller (the alert
outbox) can keep the digest pending and try at its next cycle.
"""

from __future__ import annotations

import urllib.error
from dataclasses import dataclass
from typing import Any

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web import SlackResponse

from agent.core.messages import Chart, Digest
from connectors.common.errors import FatalError, RateLimitedError, RetriableError, VendorError

__all__ = ["DIGEST_FILENAME", "DigestPosted", "post_driver_chart", "post_weekly_digest"]

_log = structlog.get_logger(__name__)
_VENDOR = "slack"
DIGEST_FILENAME = "ax-drivers.png"
#: Slack error codes that a later try can overcome (the rest need a person).
_TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


@dataclass(frozen=True, slots=True)
class DigestPosted:
    """What Slack confirmed: the uploaded chart's file id, shared into ``channel``."""

    channel: str
    file_id: str


def post_weekly_digest(client: WebClient, channel: str, digest: Digest) -> DigestPosted:
    """Post ``digest`` to ``channel`` (a channel id such as ``C0123456789``).

    Raises ``FatalError`` for what a later try cannot fix (bad token, unknown
    channel, bot not in the channel, missing ``files:write`` scope) and
    ``RetriableError`` (``RateLimitedError`` with Slack's Retry-After) for what it can.
    """
    return _upload(
        client, channel, digest.chart, title=digest.title, comment=digest.text, thread_ts=None
    )


def post_driver_chart(
    client: WebClient,
    channel: str,
    chart: Chart,
    *,
    thread_ts: str,
    title: str,
) -> DigestPosted:
    """Reply in the thread of message ``thread_ts`` in ``channel`` with the driver chart.

    The same picture as ``post_weekly_digest``'s, without a comment: the message the
    thread hangs on already carries the figures. Errors are classified the same way.
    """
    return _upload(client, channel, chart, title=title, comment=None, thread_ts=thread_ts)


def _upload(
    client: WebClient,
    channel: str,
    chart: Chart,
    *,
    title: str,
    comment: str | None,
    thread_ts: str | None,
) -> DigestPosted:
    log = _log.bind(channel=channel, thread_ts=thread_ts, image_bytes=len(chart.png))
    try:
        response = client.files_upload_v2(
            channel=channel,
            file=chart.png,
            filename=DIGEST_FILENAME,
            title=f"{title}: drivers",
            alt_txt=chart.alt_text,
            initial_comment=comment,
            thread_ts=thread_ts,
        )
    except SlackApiError as exc:
        raise _classify_api_error(exc) from None
    except urllib.error.HTTPError as exc:
        message = f"chart upload: the upload URL answered HTTP {exc.code}"
        raise _classify_status(exc.code, message) from None
    except (SlackRequestError, urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise RetriableError(
            _VENDOR, f"chart upload: cannot reach Slack ({type(exc).__name__})"
        ) from None
    posted = DigestPosted(channel=channel, file_id=_file_id(response))
    log.info("slack_digest.posted", file_id=posted.file_id)
    return posted


def _classify_api_error(exc: SlackApiError) -> VendorError:
    """Name what failed: the upload step's method, the HTTP status and Slack's ``error``.

    ``files_upload_v2`` is three calls; "unknown_error" for a chart whose message was
    already posted sent admins looking in the wrong place.
    """
    response: Any = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    url = str(getattr(response, "api_url", "") or "")
    method = url.rstrip("/").rsplit("/", 1)[-1] or "files.upload_v2"
    answer = f"HTTP {status}" if status else "no HTTP answer"
    detail = f"error {code!s}" if code else "no error field in the answer"
    message = f"chart upload: {method}: {answer}, {detail}"
    if status == 429 or code == "ratelimited":
        return RateLimitedError(_VENDOR, message, status=status, retry_after=_retry_after(response))
    if status >= 500 or code in _TRANSIENT:
        return RetriableError(_VENDOR, message, status=status)
    return FatalError(_VENDOR, message, status=status)


def _classify_status(status: int, message: str) -> VendorError:
    if status == 429:
        return RateLimitedError(_VENDOR, message, status=status)
    if status >= 500:
        return RetriableError(_VENDOR, message, status=status)
    return FatalError(_VENDOR, message, status=status)


def _retry_after(response: Any) -> float | None:
    headers = {str(k).lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _file_id(response: SlackResponse) -> str:
    files = response.get("files") or []
    if not files or not isinstance(files[0], dict) or "id" not in files[0]:
        raise FatalError(_VENDOR, "files.completeUploadExternal confirmed no file")
    return str(files[0]["id"])
