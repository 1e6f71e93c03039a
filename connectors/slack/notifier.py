"""Alerts to Slack through slack_sdk's WebClient.

Retries: the client's own retry handlers (rate limits honouring Retry-After, 5xx,
dropped connections) are the one retry layer; what still fails is classified once
into ``RetriableError`` (an outage: the outbox keeps the alert for the next cycle)
or ``FatalError`` (Slack refused this message).

Every message carries Slack message metadata (``event_type`` ``ax_alert`` with the
alert id), so after a crash between sending and recording the agent finds the
message in the channel's history instead of posting it twice. An alert's driver
chart (``attach: driver_chart``) is uploaded into its message's thread
(``connectors.slack.report.post_driver_chart``), drawn by the ``DrawChart`` the
agent hands in; after a crash mid-upload the thread is read for the chart's file
before it is uploaded again.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any
from urllib.error import URLError

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from agent.core.messages import DrawChart, OutboxAlert, Sent
from connectors.common.calls import CallCounter
from connectors.common.errors import FatalError, RateLimitedError, RetriableError, VendorError
from connectors.common.paging import paginate
from connectors.common.ratelimit import count_wait
from connectors.slack.blocks import build_message, fallback_text
from connectors.slack.limits import TIER_PER_MINUTE, SlackLimits
from connectors.slack.report import DIGEST_FILENAME, post_driver_chart
from connectors.slack.settings import SlackSettings

__all__ = ["METADATA_EVENT", "SlackNotifier", "make_client"]

METADATA_EVENT = "ax_alert"
_VENDOR = "slack"
_log = structlog.get_logger(__name__)
#: Slack errors that mean "not now" rather than "never": keep the alert queued.
_TRANSIENT = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "team_access_not_granted",
}
_UNLIMITED = dict.fromkeys(TIER_PER_MINUTE, 10**9)
#: How far before an alert's recording its message can be (clock skew margin).
_HISTORY_MARGIN = timedelta(minutes=5)


def make_client(settings: SlackSettings) -> WebClient:
    """A WebClient for the configured base URL, with slack_sdk's retry handlers."""
    if settings.bot_token is None:
        raise FatalError(_VENDOR, "no bot token configured (AX_SLACK__BOT_TOKEN)")
    retries = settings.max_retries
    return WebClient(
        token=settings.bot_token.get_secret_value(),
        base_url=settings.base_url,
        timeout=settings.timeout_seconds,
        retry_handlers=[
            _CountedRateLimitRetry(max_retry_count=retries),
            ServerErrorRetryHandler(max_retry_count=retries),
            ConnectionErrorRetryHandler(max_retry_count=retries),
        ],
    )


class _CountedRateLimitRetry(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (it sleeps for Retry-After), with the wait counted."""

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        started = time.monotonic()
        try:
            super().prepare_for_next_attempt(
                state=state, request=request, response=response, error=error
            )
        finally:
            count_wait(_VENDOR, "retry_after", time.monotonic() - started)


class SlackNotifier:
    """Implements ``agent.core.ports.Notifier`` for Slack.

    ``draw_chart`` draws an alert's driver chart when it is attached (the agent passes
    ``agent.report.digest.driver_chart``).
    """

    def __init__(
        self,
        client: WebClient,
        *,
        draw_chart: DrawChart,
        calls: CallCounter | None = None,
        limits: SlackLimits | None = None,
    ) -> None:
        self.client = client
        self.draw_chart = draw_chart
        #: Slack's tier limits per method (per channel for posts), waited for before a call;
        #: the agent's wiring passes the configured ones (None: no client-side limit).
        self.limits = limits or SlackLimits(post_per_second=1e9, per_minute=_UNLIMITED)
        #: Posts a message: retried blindly only on 429 (Slack did not take it); any other
        #: failure is retried once after looking for the message (see ``send``).
        self.poster = _rate_limit_retries_only(client)
        self.calls = calls or CallCounter(_VENDOR)
        self._users: dict[str, str | None] = {}
        self._channels: dict[str, str] | None = None

    # ---- Notifier ------------------------------------------------------------------

    def resolve(self, alert: OutboxAlert) -> str:
        owner = alert.destination.owner_email
        if owner:
            user = self.user_id(owner)
            if user is not None:
                return self._open_dm(user)
            _log.info("slack_owner_not_found_fallback", alert_id=alert.alert_id)
        return self.channel_id(alert.destination.channel)

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        """Post the alert; after a failure that may hide a posted message (a timeout, a
        dropped connection, a 5xx), look for it before posting once more."""
        try:
            return self._post(alert, channel_id)
        except RetriableError as exc:
            if isinstance(exc, RateLimitedError) and exc.status == 429:
                raise  # Slack refused it before taking it: nothing to look for
            _log.info("slack_post_uncertain", alert_id=alert.alert_id, error=str(exc))
            found = self.find_sent(alert, channel_id)
            return found if found is not None else self._post(alert, channel_id)

    def _post(self, alert: OutboxAlert, channel_id: str) -> Sent:
        mention = self._mention(alert)
        self.limits.acquire("chat.postMessage", channel_id)
        data = self._call(
            "chat.postMessage",
            lambda: self.poster.chat_postMessage(
                channel=channel_id,
                text=fallback_text(alert.content, mention),
                blocks=build_message(alert.content, mention),
                metadata={
                    "event_type": METADATA_EVENT,
                    "event_payload": {"alert_id": alert.alert_id, "rule_id": alert.rule_id},
                },
                unfurl_links=False,
            ),
        )
        return Sent(channel=str(data["channel"]), ts=str(data["ts"]))

    def find_sent(self, alert: OutboxAlert, channel_id: str) -> Sent | None:
        oldest = (alert.created_at - _HISTORY_MARGIN).timestamp()
        for messages in paginate(lambda cursor: self._history(channel_id, oldest, cursor)):
            for message in messages:
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if (
                    meta.get("event_type") == METADATA_EVENT
                    and payload.get("alert_id") == alert.alert_id
                ):
                    return Sent(channel=channel_id, ts=str(message["ts"]))
        return None

    def update(self, alert: OutboxAlert, target: Sent) -> Sent:
        data = self._call(
            "chat.update",
            lambda: self.client.chat_update(
                channel=target.channel,
                ts=target.ts,
                text=fallback_text(alert.content),
                blocks=build_message(alert.content),
            ),
        )
        return Sent(channel=str(data["channel"]), ts=str(data["ts"]))

    def attach(self, alert: OutboxAlert, message: Sent) -> None:
        attachment = alert.content.attachment
        if attachment is None:
            return
        kind = "files.upload_v2"
        self.limits.acquire("files.getUploadURLExternal")
        self.limits.acquire("files.completeUploadExternal")
        started = time.perf_counter()
        try:
            posted = post_driver_chart(
                self.client,
                message.channel,
                self.draw_chart(attachment.drivers),
                thread_ts=message.ts,
                title=alert.content.title,
            )
        except VendorError as exc:
            self._count(kind, "error", started, exc.status)
            raise
        self._count(kind, "ok", started, None)
        _log.info("slack_chart_attached", alert_id=alert.alert_id, file_id=posted.file_id)

    def find_attachment(self, alert: OutboxAlert, message: Sent) -> bool:
        """Whether the message's thread holds the chart's file (an earlier upload)."""
        for replies in paginate(lambda cursor: self._replies(message, cursor)):
            for reply in replies:
                if reply.get("ts") == message.ts:
                    continue  # the thread's parent: the message itself
                names = {f.get("name") for f in reply.get("files") or [] if isinstance(f, dict)}
                if DIGEST_FILENAME in names:
                    return True
        return False

    # ---- lookups -------------------------------------------------------------------

    def user_id(self, email: str) -> str | None:
        """The Slack user with this email (cached, misses too); None when unknown."""
        key = email.strip().lower()
        if key not in self._users:
            try:
                data = self._call(
                    "users.lookupByEmail", lambda: self.client.users_lookupByEmail(email=key)
                )
                self._users[key] = str(data["user"]["id"])
            except FatalError as exc:
                if "users_not_found" not in str(exc):
                    raise
                self._users[key] = None
        return self._users[key]

    def channel_id(self, channel: str) -> str:
        """Ids pass through; ``#name`` is looked up once in the workspace's channel list."""
        if not channel.startswith("#"):
            return channel
        if self._channels is None:
            self._channels = dict(self._all_channels())
        found = self._channels.get(channel[1:])
        if found is None:
            raise FatalError(_VENDOR, f"channel {channel} not found (is the app invited to it?)")
        return found

    def _all_channels(self) -> Iterator[tuple[str, str]]:
        def page(cursor: str | None) -> tuple[Sequence[dict[str, Any]], str | None]:
            data = self._call(
                "conversations.list",
                lambda: self.client.conversations_list(
                    types="public_channel,private_channel",
                    exclude_archived=True,
                    limit=200,
                    cursor=cursor,
                ),
            )
            return data.get("channels", []), _next_cursor(data)

        for channels in paginate(page):
            for channel in channels:
                yield str(channel["name"]), str(channel["id"])

    def _open_dm(self, user: str) -> str:
        data = self._call("conversations.open", lambda: self.client.conversations_open(users=user))
        return str(data["channel"]["id"])

    def _history(
        self, channel: str, oldest: float, cursor: str | None
    ) -> tuple[Sequence[dict[str, Any]], str | None]:
        data = self._call(
            "conversations.history",
            lambda: self.client.conversations_history(
                channel=channel,
                oldest=f"{oldest:.6f}",
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            ),
        )
        return data.get("messages", []), _next_cursor(data)

    def _replies(
        self, message: Sent, cursor: str | None
    ) -> tuple[Sequence[dict[str, Any]], str | None]:
        data = self._call(
            "conversations.replies",
            lambda: self.client.conversations_replies(
                channel=message.channel, ts=message.ts, limit=200, cursor=cursor
            ),
        )
        return data.get("messages", []), _next_cursor(data)

    def _mention(self, alert: OutboxAlert) -> str | None:
        email = alert.content.mention_email
        if not email:
            return None
        user = self.user_id(email)
        return f"<@{user}>" if user else None

    def _call(self, kind: str, fn: Callable[[], Any]) -> dict[str, Any]:
        if kind != "chat.postMessage":  # posts wait per channel, in ``_post``
            self.limits.acquire(kind)
        started = time.perf_counter()
        try:
            response = fn()
        except SlackApiError as exc:
            error = _classify(kind, exc)
            self._count(kind, "error", started, getattr(exc.response, "status_code", None))
            raise error from None
        except (URLError, ConnectionError, TimeoutError, ssl.SSLError) as exc:
            self._count(kind, "error", started, None)
            raise RetriableError(
                _VENDOR, f"{kind}: cannot reach Slack ({type(exc).__name__})"
            ) from None
        except SlackClientError as exc:
            self._count(kind, "error", started, None)
            raise FatalError(_VENDOR, f"{kind}: {exc}") from None
        self._count(kind, "ok", started, getattr(response, "status_code", None))
        data: dict[str, Any] = response.data if isinstance(response.data, dict) else {}
        return data

    def _count(self, kind: str, outcome: str, started: float, status: int | None) -> None:
        self.calls.count(kind, outcome, status=status, seconds=time.perf_counter() - started)


def _rate_limit_retries_only(client: WebClient) -> WebClient:
    """A twin of ``client`` that retries only Slack's 429s (the message was not taken)."""
    return WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=client.headers,
        retry_handlers=[
            h for h in client.retry_handlers if isinstance(h, RateLimitErrorRetryHandler)
        ],
    )


def _next_cursor(data: dict[str, Any]) -> str | None:
    cursor = (data.get("response_metadata") or {}).get("next_cursor")
    return str(cursor) if cursor else None


def _classify(kind: str, exc: SlackApiError) -> Exception:
    response = exc.response
    status = getattr(response, "status_code", None)
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    code = str(data.get("error") or f"http_{status}")
    message = f"{kind}: {code}" + (f" (HTTP {status})" if status and status != 200 else "")
    if status == 429 or code == "ratelimited":
        retry_after = _retry_after(response)
        return RateLimitedError(_VENDOR, message, status=status, retry_after=retry_after)
    if (status is not None and status >= 500) or code in _TRANSIENT:
        return RetriableError(_VENDOR, message, status=status)
    return FatalError(_VENDOR, message, status=status)


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return float(raw)
            except (TypeError, ValueError):
                return None
    return None
