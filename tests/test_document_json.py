"""The document's JSON form: the fast conversion gives what a field-by-field walk gives."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agent.core.contract import MetricsConfig
from agent.core.timeutil import parse_instant
from agent.sources.folder import compute_folder

FIXTURES = Path(__file__).parent / "fixtures"


def _walk(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_walk(v) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _walk(getattr(value, f.name)) for f in fields(value)}
    return value


@pytest.mark.parametrize("example", ["three-accounts", "seed_example"])
def test_json_form_is_the_field_by_field_walk(example: str) -> None:
    folder = FIXTURES / example
    as_of = parse_instant((folder / "as_of.txt").read_text().strip())
    doc = compute_folder(folder, as_of=as_of, config=MetricsConfig()).document
    obj = doc.to_json_obj()
    assert obj["accounts"], "the example has accounts"
    for key in ("portfolio", "accounts", "drivers", "unmatched", "rejected", "dropped"):
        expected = _walk(getattr(doc, key))
        assert obj[key] == expected, key
        assert repr(obj[key]) == repr(expected), key  # the same types too (1 is not 1.0)
    assert obj["as_of"] == doc.as_of.isoformat()
