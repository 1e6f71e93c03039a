"""The worked examples of the metric contract, compared with their expected documents."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agent.core.compute import compute_document
from agent.sources.plainfiles import read_crm_folder

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = ["three-accounts", "seed_example"]


def _as_of(folder: Path) -> datetime:
    return datetime.fromisoformat(folder.joinpath("as_of.txt").read_text(encoding="utf-8").strip())


def _document(name: str) -> dict[str, Any]:
    folder = FIXTURES / name
    as_of = _as_of(folder)
    crm = read_crm_folder(folder, as_of)
    return compute_document(
        crm.accounts,
        crm.contacts,
        crm.responses,
        as_of=as_of,
        rejected=crm.rejected,
        excluded=crm.excluded,
    ).to_json_obj()


def _instant(value: object) -> datetime | None:
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def assert_same(actual: Any, expected: Any, path: str = "$") -> None:
    """Equal as JSON, floats within 1e-6 absolute or 1e-9 relative, timestamps as instants."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(expected), f"{path}: keys differ {set(actual) ^ set(expected)}"
        for key, value in expected.items():
            assert_same(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), path
        assert len(actual) == len(expected), f"{path}: {len(actual)} items, want {len(expected)}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{index}]")
    elif isinstance(expected, float) and not isinstance(actual, bool):
        assert isinstance(actual, int | float), f"{path}: {actual!r} is not a number"
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-6), (
            f"{path}: {actual!r} != {expected!r}"
        )
    elif _instant(expected) is not None:
        assert _instant(actual) == _instant(expected), f"{path}: {actual!r} != {expected!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
        assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"


@pytest.mark.parametrize("name", EXAMPLES)
def test_document_matches_expected(name: str) -> None:
    expected = json.loads((FIXTURES / name / "expected.json").read_text(encoding="utf-8"))
    assert_same(_document(name), expected)


def test_document_is_plain_json() -> None:
    text = json.dumps(_document("three-accounts"))
    assert json.loads(text)["portfolio"]["accounts"] == 3


def test_seed_example_shows_nps_next_to_its_coverage() -> None:
    """NPS 65 from 30 of 250 customers holding 25 % of revenue (DOMAIN.md's first idea)."""
    portfolio = _document("seed_example")["portfolio"]
    assert portfolio["nps"] == pytest.approx(65.0)
    assert portfolio["accounts_with_feedback"] == 30
    assert portfolio["account_coverage"] == pytest.approx(0.12)
    assert portfolio["revenue_coverage"] == pytest.approx(0.25)


def test_assert_same_catches_differences() -> None:
    """The comparison itself must fail on a wrong number, key or type."""
    with pytest.raises(AssertionError):
        assert_same({"a": 1.0}, {"a": 1.1})
    with pytest.raises(AssertionError):
        assert_same({"a": 1.0, "b": 2}, {"a": 1.0})
    with pytest.raises(AssertionError):
        assert_same({"a": None}, {"a": 0})
    assert_same({"t": "2025-06-01T14:00:00+02:00"}, {"t": "2025-06-01T12:00:00+00:00"})
    assert_same({"x": 1.0 + 1e-12}, {"x": 1.0})
