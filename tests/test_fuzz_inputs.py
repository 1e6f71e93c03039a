"""Generated survey files and webhook bodies through ingest (hypothesis).

Every input ends as counted, rejected with a reason, or refused with a clear error;
never a traceback, never a blocked pipeline.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config.service import FileDropSettings
from agent.service.filedrop import FileDrop
from agent.service.signing import sign
from agent.service.webhook import WebhookHandler
from agent.sources.ingest import json_record, trim
from agent.sources.plainfiles import CrmFormatError, read_response_file
from agent.state.store import StateStore
from tests.core_builders import AS_OF
from tests.service.httpkit import webhook_settings

HEADER = ["response_id", "email", "score", "submitted_at", "driver", "comment"]
REASONS = {
    "invalid_record",
    "missing_response_id",
    "duplicate_response_id",
    "invalid_score",
    "invalid_submitted_at",
    "future_submitted_at",
    "wrong_field_count",
    "field_too_large",
    "unterminated_quote",
}
SECRET = "whsec-fuzz-1234"
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
tricky = st.sampled_from(
    ['"', '""', ",", "\n", "\r\n", " ", "\t", "11", "7.5", "-1", "", "r1", "a@b.c", "\ufeff"]
)
field = st.one_of(texts, tricky, st.sampled_from(["9", "3", "2025-05-01T00:00:00Z", "2999-01-01"]))
ids = st.sampled_from(["r1", "r2", " r1 ", "r3", "", "r4"])


@st.composite
def csv_rows(draw: st.DrawFn) -> list[list[str]]:
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        width = draw(st.sampled_from([len(HEADER)] * 4 + [len(HEADER) - 1, len(HEADER) + 1]))
        row = [draw(ids)] + [draw(field) for _ in range(width - 1)]
        rows.append(row)
    return rows


def _blank(row: list[str]) -> bool:
    return not "".join(row).strip(" \t")


def _check_rejects(rejected: list[Any], records: int) -> None:
    positions = [r.position for r in rejected]
    assert positions == sorted(set(positions))
    assert all(1 <= p <= records for p in positions)
    assert all(r.reason in REASONS for r in rejected)
    assert all(len(r.value) <= 80 for r in rejected)
    for r in rejected:
        r.value.encode("utf-8")  # printable: no lone surrogate


@FUZZ
@given(rows=csv_rows())
def test_every_csv_record_is_counted_rejected_or_an_identical_repeat(
    rows: list[list[str]],
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # quotes any field with \r or \n
    writer.writerow(HEADER)
    writer.writerows(rows)
    text = buffer.getvalue()
    records = [r for r in rows if not _blank(r)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "survey.csv"
        path.write_text(text, encoding="utf-8", newline="")
        responses, rejected = read_response_file(path, AS_OF)
    _check_rejects(rejected, len(records))
    first: dict[str, str] = {}
    repeats = 0
    for row in records:
        if len(row) != len(HEADER) or not trim(row[0]):
            continue
        line = buffer_line(row)
        known = first.setdefault(trim(row[0]), line)
        repeats += known == line and known is not line
    assert len(responses) + len(rejected) + repeats == len(records)


def buffer_line(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(row)
    return out.getvalue()


@FUZZ
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
def test_any_bytes_as_a_csv_file_are_read_or_refused_clearly(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "survey.csv"
        path.write_bytes(b",".join(h.encode() for h in HEADER) + b"\n" + data)
        try:
            responses, rejected = read_response_file(path, AS_OF)
        except CrmFormatError as exc:
            message = str(exc)
            responses, rejected = [], []
        else:
            message = "survey.csv"
    assert "survey.csv" in message
    _check_rejects(rejected, 10_000)
    assert all(r.response_id for r in responses)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)


@st.composite
def jsonl_lines(draw: st.DrawFn) -> list[str]:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(
            st.sampled_from(["record", "record", "record", "value", "deep", "lone", "junk"])
        )
        if kind == "record":
            record = {
                "response_id": draw(ids | st.integers(0, 3)),
                "score": draw(st.integers(-1, 12) | field),
                "submitted_at": draw(field),
                "comment": draw(json_values),
            }
            lines.append(json.dumps(record))
        elif kind == "value":
            lines.append(json.dumps(draw(json_values)))
        elif kind == "deep":
            depth = draw(st.sampled_from([50, 5_000, 100_000]))
            lines.append('{"response_id": "d", "x": ' + "[" * depth + "]" * depth + "}")
        elif kind == "lone":
            lines.append('{"response_id": "s", "score": 9, "comment": "\\udc80"}')
        else:
            lines.append(draw(texts).replace("\n", " ").replace("\r", " "))
    return lines


@FUZZ
@given(lines=jsonl_lines())
def test_every_jsonl_line_is_counted_rejected_or_an_identical_repeat(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "survey.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        responses, rejected = read_response_file(path, AS_OF)
    kept = [line for line in lines if line.strip()]
    _check_rejects(rejected, len(kept))
    first: dict[str, str] = {}
    repeats = 0
    for line in kept:
        record = json_record(line)
        response_id = trim(record.get("response_id")) if record is not None else ""
        if response_id:
            known = first.setdefault(response_id, line)
            repeats += known == line and known is not line
    assert len(responses) + len(rejected) + repeats == len(kept)


@FUZZ
@given(content=st.one_of(csv_rows(), jsonl_lines()), jsonl=st.booleans())
def test_the_file_drop_never_blocks(
    tmp_path: Path, store: StateStore, content: Any, jsonl: bool
) -> None:
    drop = tmp_path / f"drop-{time.monotonic_ns()}"
    drop.mkdir()
    if jsonl and content and isinstance(content[0], str):
        (drop / "a.jsonl").write_text("\n".join(content), encoding="utf-8")
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(HEADER)
        writer.writerows(row for row in content if isinstance(row, list))
        (drop / "a.csv").write_text(buffer.getvalue(), encoding="utf-8")
    (drop / "z.jsonl").write_text(
        json.dumps({"response_id": "after", "score": 9, "submitted_at": "2025-05-01T00:00:00Z"}),
        encoding="utf-8",
    )
    FileDrop(FileDropSettings(path=drop, settle_seconds=0), store).scan(AS_OF)
    assert [p.name for p in drop.iterdir() if p.is_file()] == []  # each one processed or set aside
    assert "after" in {r.response_id for r in store.load_responses()}


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["records", "value", "deep", "lone", "bytes"]))
    if kind == "records":
        records = [
            {
                "response_id": draw(ids | st.integers(0, 3)),
                "email": draw(field | st.none()),
                "score": draw(st.integers(-1, 12) | field | json_values),
                "submitted_at": draw(field | st.just("2025-05-01T00:00:00Z")),
                "comment": draw(json_values),
            }
            for _ in range(draw(st.integers(1, 3)))
        ]
        return json.dumps(records if draw(st.booleans()) else records[0]).encode()
    if kind == "value":
        return json.dumps(draw(json_values)).encode()
    if kind == "deep":
        depth = draw(st.sampled_from([40, 100_000]))
        return ('{"response_id": "d", "comment": ' + "[" * depth + "]" * depth + "}").encode()
    if kind == "lone":
        name = draw(st.sampled_from(['"\\ud800": 1', '"comment": "x\\udfff"'])).encode()
        return b'{"response_id": "s", "score": 9, "submitted_at": "2025-05-01", ' + name + b"}"
    return draw(st.binary(max_size=200))


@FUZZ
@given(body=bodies())
def test_every_webhook_body_gets_a_clear_answer(store: StateStore, body: bytes) -> None:
    hook = WebhookHandler(webhook_settings(SECRET), store, clock=lambda: AS_OF)
    headers = {"content-type": "application/json", **sign(SECRET, body, time.time())}
    reply = hook.handle(headers, body)
    assert reply.status in {200, 400, 409, 413, 422}
    assert reply.json()  # the answer itself is printable JSON
    if reply.status >= 400:
        assert reply.body["error"]
    if reply.status == 422:
        assert all(p["field"] for p in reply.body["problems"])
