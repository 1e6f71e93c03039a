"""Shared helpers of the report tests: fixture portfolios and the parsed page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import html5lib

from agent.core.compute import compute_document
from agent.core.contract import MetricsConfig
from agent.core.document import MetricsDocument
from agent.core.models import Account
from agent.core.timeutil import parse_instant
from agent.sources.plainfiles import read_crm_folder

FIXTURES = Path(__file__).parent / "fixtures"
SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class Portfolio:
    doc: MetricsDocument
    accounts: list[Account]
    expected: dict[str, Any]


def load_fixture(name: str) -> Portfolio:
    """A golden example: its computed document, its accounts and its expected.json."""
    folder = FIXTURES / name
    as_of = parse_instant((folder / "as_of.txt").read_text().strip())
    data = read_crm_folder(folder, as_of)
    doc = compute_document(
        data.accounts,
        data.contacts,
        data.responses,
        as_of=as_of,
        config=MetricsConfig(),
        rejected=data.rejected,
    )
    expected = json.loads((folder / "expected.json").read_text())
    return Portfolio(doc, data.accounts, expected)


def parse_strict(page: str) -> Element:
    """The page as an element tree; any HTML parse error fails the test."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    tree: Element = parser.parse(page)
    return tree


def text_of(element: Element) -> str:
    return " ".join("".join(element.itertext()).split())


def by_id(tree: Element, element_id: str) -> Element:
    found = [e for e in tree.iter() if e.get("id") == element_id]
    assert len(found) == 1, f"expected one element with id {element_id}, found {len(found)}"
    return found[0]
