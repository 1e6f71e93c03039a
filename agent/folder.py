"""The metrics document of a plain-file CRM folder, read fresh (no state)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from agent.compute import compute_document
from agent.config import MetricsConfig
from agent.document import MetricsDocument
from agent.plainfiles import CrmFileNotFoundError, CrmFormatError, read_crm_folder

__all__ = ["FolderError", "compute_folder"]

#: A folder or required file missing, or a file that cannot be read as CSV.
FolderError = (CrmFileNotFoundError, CrmFormatError)


def compute_folder(folder: Path, *, as_of: datetime, config: MetricsConfig) -> MetricsDocument:
    """Read the folder and compute its document; rejected rows are in the document."""
    data = read_crm_folder(folder, as_of)
    return compute_document(
        data.accounts,
        data.contacts,
        data.responses,
        as_of=as_of,
        config=config,
        rejected=data.rejected,
    )
