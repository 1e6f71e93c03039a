"""Bulk API 2.0 query jobs of the fake org: created, polled, results served as CSV pages."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Mapping
from typing import Any

from tests.salesforce.fake.org import FakeOrg, SoqlError, parse_soql

__all__ = ["FakeBulk", "Reply"]

Reply = tuple[int, dict[str, str], str]
_JSON = {"Content-Type": "application/json;charset=UTF-8"}


def _json(status: int, body: Any) -> Reply:
    return status, dict(_JSON), json.dumps(body)


def _flatten(record: Mapping[str, Any], fields: tuple[str, ...]) -> list[str]:
    """A projected record as one CSV row; relationship paths become dotted columns."""
    out = []
    for name in fields:
        node: Any = record
        for part in name.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, bool):
            out.append(str(node).lower())
        else:
            out.append("" if node is None else str(node))
    return out


class FakeBulk:
    """Jobs by id; a job completes after ``polls_until_done`` status checks."""

    def __init__(self, org: FakeOrg, api_version: str) -> None:
        self.org = org
        self.api_version = api_version
        self.polls_until_done = 1
        self.jobs: dict[str, dict[str, Any]] = {}
        self._seq = itertools.count(1)

    def create(self, body: str) -> Reply:
        spec = json.loads(body)
        try:
            parsed = parse_soql(spec["query"])
            rows = self.org.matching(parsed, include_deleted=spec.get("operation") == "queryAll")
        except SoqlError as exc:
            return _json(400, [{"message": str(exc), "errorCode": exc.code}])
        job_id = f"750{next(self._seq):015d}"
        csv_rows = [
            _flatten(self.org.project(parsed.sobject, r, parsed.fields), parsed.fields)
            for r in rows
        ]
        self.jobs[job_id] = {"fields": parsed.fields, "rows": csv_rows, "polls": 0}
        return _json(
            200,
            {
                "id": job_id,
                "operation": spec.get("operation"),
                "object": parsed.sobject,
                "state": "UploadComplete",
                "contentType": "CSV",
                "apiVersion": float(self.api_version),
                "lineEnding": "LF",
                "columnDelimiter": "COMMA",
            },
        )

    def poll(self, job_id: str) -> Reply:
        job = self.jobs[job_id]
        job["polls"] += 1
        state = "JobComplete" if job["polls"] >= self.polls_until_done else "InProgress"
        return _json(
            200, {"id": job_id, "state": state, "numberRecordsProcessed": len(job["rows"])}
        )

    def results(self, job_id: str, query: Mapping[str, list[str]]) -> Reply:
        job = self.jobs[job_id]
        start = int(query.get("locator", ["0"])[0] or 0)
        size = int(query.get("maxRecords", ["50000"])[0])
        rows = job["rows"][start : start + size]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job["fields"])
        writer.writerows(rows)
        nxt = str(start + size) if start + size < len(job["rows"]) else "null"
        headers = {
            "Content-Type": "text/csv",
            "Sforce-Locator": nxt,
            "Sforce-NumberOfRecords": str(len(rows)),
        }
        return 200, headers, out.getvalue()
