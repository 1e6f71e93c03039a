"""A loopback fake of the Slack Web API methods the notifier uses.

Shapes follow Slack's Web API reference and its OpenAPI document: every method
answers ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` with HTTP 200,
rate limits are HTTP 429 with ``Retry-After``. The fake checks what Slack checks:
Bearer auth, JSON bodies for chat.postMessage/chat.update, the methods' required
arguments, and stores messages (with metadata) per channel so conversations.history
can return them.

File upload v2 as slack_sdk's ``files_upload_v2`` drives it: files.getUploadURLExternal
(form body: filename, length) answers an upload URL on this server; the bytes are
POSTed there (no auth: the URL is the credential); files.completeUploadExternal
(form body: ``files`` as a JSON array of ``{id, title}``, ``channel_id``,
``thread_ts``) shares them: with ``thread_ts`` as a reply in that message's thread,
a message carrying ``files`` (id, name, title, mimetype) and ``upload: true``.
conversations.replies returns a thread: the parent first, then
its replies, oldest first; conversations.history returns parent messages only.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TOKEN = "xoxb-test-token"
CHANNELS = {"cx-alerts": "C0CXALERTS", "cx-leadership": "C0LEADERS", "cx-admin": "C0ADMIN"}
USERS = {"owner@acme.example": "U0OWNER"}


@dataclass
class FakeSlack:
    server: HTTPServer
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: method -> list of (status, headers) to answer before normal handling.
    failures: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    #: method -> Slack error codes to answer (``ok: false``, HTTP 200), one per call.
    refusals: dict[str, list[str]] = field(default_factory=dict)
    #: (channel, parent ts) -> the thread's replies, oldest first.
    replies: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    #: file id -> what getUploadURLExternal was told, and the uploaded bytes.
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: HTTP statuses the upload URL answers before accepting bytes.
    upload_failures: list[int] = field(default_factory=list)
    down: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: int = 0

    def install(self) -> FakeSlack:
        for method in (
            "chat.postMessage",
            "chat.update",
            "conversations.history",
            "conversations.list",
            "conversations.open",
            "users.lookupByEmail",
            "files.getUploadURLExternal",
            "files.completeUploadExternal",
            "conversations.replies",
        ):
            self.server.expect_request(f"/api/{method}", method="POST").respond_with_handler(
                self._dispatch(method)
            )
        self.server.expect_request(_UPLOAD, method="POST").respond_with_handler(self._upload)
        return self

    @property
    def base_url(self) -> str:
        return self.server.url_for("/api/")

    def posted(self) -> list[dict[str, Any]]:
        return [args for method, args in self.calls if method == "chat.postMessage"]

    def fail(
        self, method: str, status: int, times: int = 1, retry_after: str | None = None
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.failures.setdefault(method, []).extend([(status, headers)] * times)

    def refuse(self, method: str, error: str, times: int = 1) -> None:
        self.refusals.setdefault(method, []).extend([error] * times)

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The replies in the thread of message ``ts``."""
        return self.replies.get((channel, ts), [])

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    # ---- dispatch ---------------------------------------------------------------------

    def _dispatch(self, method: str) -> Any:
        def handle(request: Request) -> Response:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return _ok_false("not_authed")
            with self._lock:
                if self.down:
                    return Response("upstream unavailable", status=503)
                queued = self.failures.get(method)
                if queued:
                    status, headers = queued.pop(0)
                    return Response(
                        json.dumps({"ok": False, "error": "ratelimited"}), status, headers
                    )
                args = _arguments(method, request)
                if isinstance(args, Response):
                    return args
                self.calls.append((method, args))
                refused = self.refusals.get(method)
                if refused:
                    return _ok_false(refused.pop(0))
                return getattr(self, "_" + method.replace(".", "_"))(args)

        return handle

    def _chat_postMessage(self, args: dict[str, Any]) -> Response:  # noqa: N802  # Slack's method name
        channel = args.get("channel")
        if not channel:
            return _ok_false("channel_not_found")
        if not args.get("text") and not args.get("blocks"):
            return _ok_false("no_text")
        if channel not in CHANNELS.values() and not channel.startswith("D"):
            return _ok_false("channel_not_found")
        if not _blocks_fit(args.get("blocks")):
            return _ok_false("invalid_blocks")
        meta = args.get("metadata")
        if meta is not None and not (
            isinstance(meta.get("event_type"), str) and isinstance(meta.get("event_payload"), dict)
        ):
            return _ok_false("invalid_metadata_format")
        ts = self._next_ts()
        message = {"type": "message", "text": args.get("text", ""), "ts": ts, "bot_id": "B0AX"}
        if args.get("blocks"):
            message["blocks"] = args["blocks"]
        if meta is not None:
            message["metadata"] = meta
        self.messages.setdefault(channel, []).append(message)
        return _ok({"channel": channel, "ts": ts, "message": message})

    def _next_ts(self) -> str:
        self._ts += 1
        return f"{1_800_000_000 + self._ts}.{self._ts:06d}"

    def _chat_update(self, args: dict[str, Any]) -> Response:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel or not ts:
            return _ok_false("invalid_arguments")
        for message in self.messages.get(channel, []):
            if message["ts"] == ts:
                if not _blocks_fit(args.get("blocks")):
                    return _ok_false("invalid_blocks")
                message["text"] = args.get("text", message["text"])
                if args.get("blocks"):
                    message["blocks"] = args["blocks"]
                return _ok({"channel": channel, "ts": ts, "text": message["text"]})
        return _ok_false("message_not_found")

    def _conversations_history(self, args: dict[str, Any]) -> Response:
        channel = args.get("channel")
        if channel not in self.messages and channel not in CHANNELS.values():
            return _ok_false("channel_not_found")
        oldest = float(args.get("oldest") or 0)
        with_meta = args.get("include_all_metadata") in ("1", "true", "True")
        limit = int(args.get("limit") or 100)
        found = [m for m in reversed(self.messages.get(channel, [])) if float(m["ts"]) > oldest]
        start = int(args.get("cursor") or 0)
        page = found[start : start + limit]
        out = [m if with_meta else {k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = start + limit < len(found)
        return _ok(
            {
                "messages": out,
                "has_more": more,
                "pin_count": 0,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            }
        )

    def _conversations_replies(self, args: dict[str, Any]) -> Response:
        channel, ts = args.get("channel"), args.get("ts")
        if channel not in self.messages and channel not in CHANNELS.values():
            return _ok_false("channel_not_found")
        parent = next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)
        if parent is None:
            return _ok_false("thread_not_found")
        found = [parent, *self.thread(channel, str(ts))]
        limit = int(args.get("limit") or 100)
        start = int(args.get("cursor") or 0)
        more = start + limit < len(found)
        return _ok(
            {
                "messages": found[start : start + limit],
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            }
        )

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> Response:  # noqa: N802  # Slack's method name
        filename, length = args.get("filename"), args.get("length")
        if not filename or not length or not str(length).isdigit() or int(length) <= 0:
            return _ok_false("invalid_arguments")
        file_id = f"F0{len(self.files) + 1:08d}"
        self.files[file_id] = {
            "name": filename,
            "length": int(length),
            "alt_txt": args.get("alt_txt"),
            "data": None,
        }
        url = self.server.url_for(f"/upload/v1/{file_id}")
        return _ok({"upload_url": url, "file_id": file_id})

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> Response:  # noqa: N802  # Slack's method name
        try:
            items = json.loads(args.get("files") or "")
        except ValueError:
            return _ok_false("invalid_arguments")
        stored = [self.files.get(str(item.get("id"))) for item in items]
        if not items or any(f is None or f["data"] is None for f in stored):
            return _ok_false("file_not_found")
        shared = [
            {
                "id": item["id"],
                "name": f["name"],
                "title": item.get("title") or f["name"],
                "mimetype": "image/png",
                "size": len(f["data"]),
            }
            for item, f in zip(items, stored, strict=True)
            if f is not None
        ]
        channel = args.get("channel_id")
        if channel:
            self._share(channel, args.get("thread_ts"), args.get("initial_comment"), shared)
        return _ok({"files": [{"id": f["id"], "title": f["title"]} for f in shared]})

    def _share(
        self, channel: str, thread_ts: str | None, comment: str | None, files: list[dict[str, Any]]
    ) -> None:
        message = {
            "type": "message",
            "text": comment or "",
            "files": files,
            "upload": True,
            "user": "U0AXBOT",
            "ts": self._next_ts(),
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
            self.replies.setdefault((channel, thread_ts), []).append(message)
        else:
            self.messages.setdefault(channel, []).append(message)

    def _upload(self, request: Request) -> Response:
        """The upload URL: takes the raw bytes of a file announced by getUploadURLExternal."""
        with self._lock:
            if self.upload_failures:
                return Response("upload unavailable", status=self.upload_failures.pop(0))
            file_id = request.path.rsplit("/", 1)[-1]
            stored = self.files.get(file_id)
            if stored is None:
                return Response("no such upload", status=404)
            data = request.get_data()
            if len(data) != stored["length"]:
                return Response("length mismatch", status=400)
            stored["data"] = data
            self.calls.append(("upload", {"file_id": file_id, "bytes": len(data)}))
            return Response(f"OK - {len(data)}", status=200, content_type="text/plain")

    def _conversations_list(self, args: dict[str, Any]) -> Response:
        channels = [
            {"id": cid, "name": name, "is_channel": True, "is_archived": False, "is_member": True}
            for name, cid in CHANNELS.items()
        ]
        return _ok({"channels": channels, "response_metadata": {"next_cursor": ""}})

    def _conversations_open(self, args: dict[str, Any]) -> Response:
        users = args.get("users")
        if not users:
            return _ok_false("user_not_found")
        return _ok({"channel": {"id": "D" + users[1:]}})

    def _users_lookupByEmail(self, args: dict[str, Any]) -> Response:  # noqa: N802  # Slack's method name
        email = args.get("email")
        if not email:
            return _ok_false("invalid_arguments")
        user = USERS.get(email)
        if user is None:
            return _ok_false("users_not_found")
        return _ok({"user": {"id": user, "name": email.split("@")[0], "profile": {"email": email}}})


_JSON_METHODS = {"chat.postMessage", "chat.update"}
_UPLOAD = re.compile(r"^/upload/v1/F0\d{8}$")


def _arguments(method: str, request: Request) -> dict[str, Any] | Response:
    content_type = request.headers.get("Content-Type", "")
    if method in _JSON_METHODS:
        if not content_type.startswith("application/json"):
            return Response("expected a JSON body", status=415)
        return dict(request.get_json())
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return Response("expected a form body", status=415)
    return {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}


def _blocks_fit(blocks: Any) -> bool:
    """Slack's Block Kit limits, as Slack enforces them (``invalid_blocks``)."""
    if blocks is None:
        return True
    if len(blocks) > 50:
        return False
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        if len(text) > (150 if block["type"] == "header" else 3000):
            return False
        fields = block.get("fields") or []
        if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
            return False
    return True


def _ok(data: dict[str, Any]) -> Response:
    return Response(json.dumps({"ok": True, **data}), 200, content_type="application/json")


def _ok_false(error: str) -> Response:
    return Response(json.dumps({"ok": False, "error": error}), 200, content_type="application/json")
