"""The metrics document of a plain-file CRM folder, read fresh (no state)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from agent import plainfiles
from agent.compute import compute_document
from agent.config import MetricsConfig
from agent.document import MetricsDocument

__all__ = ["MissingInputError", "compute_folder", "require_folder"]


class MissingInputError(Exception):
    """A CRM folder or one of its required files is not there."""


def require_folder(folder: Path) -> None:
    """Raise ``MissingInputError`` naming the first thing missing from ``folder``."""
    if not folder.is_dir():
        raise MissingInputError(f"CRM folder {folder} does not exist")
    for name in ("accounts.csv", "contacts.csv"):
        if not (folder / name).is_file():
            raise MissingInputError(f"{folder / name} does not exist")
    if not any((folder / n).is_file() for n in ("responses.csv", "responses.jsonl")):
        raise MissingInputError(f"{folder} has no responses.csv or responses.jsonl")


def compute_folder(folder: Path, *, as_of: datetime, config: MetricsConfig) -> MetricsDocument:
    """Read the folder and compute its document; rejected rows are in the document."""
    require_folder(folder)
    accounts = plainfiles.read_accounts(folder / "accounts.csv")
    contacts = plainfiles.read_contacts(folder / "contacts.csv", {a.id for a in accounts})
    responses, rejected = plainfiles.read_responses(folder, as_of)
    return compute_document(
        accounts, contacts, responses, as_of=as_of, config=config, rejected=rejected
    )
