"""The figures of a plain-file CRM folder, read fresh (no state).

One reader for every command that takes ``--crm-dir`` (metrics, report, rules test).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from agent.core.compute import Computed, compute_document, compute_with_matches, without_gc
from agent.core.contract import MetricsConfig
from agent.sources.plainfiles import (
    CrmFileNotFoundError,
    CrmFolder,
    CrmFormatError,
    read_crm_folder,
)

__all__ = ["FolderError", "compute_folder", "compute_read"]

#: A folder or required file missing, or a file that cannot be read as CSV.
FolderError = (CrmFileNotFoundError, CrmFormatError)


def compute_folder(
    folder: Path,
    *,
    as_of: datetime,
    config: MetricsConfig,
    with_matches: bool = False,
    contact_figures: bool = True,
) -> Computed:
    """Read the folder and compute its document; rejected rows are in the document.

    ``with_matches`` also keeps every matched response (what response rules need);
    without it the matches are not held in memory. Without ``contact_figures`` the
    document's ``contacts`` (write-back only, not in the JSON document) stays empty.
    """
    with without_gc():  # millions of acyclic objects: the collector's scans find nothing
        return compute_read(
            read_crm_folder(folder, as_of),
            as_of=as_of,
            config=config,
            with_matches=with_matches,
            contact_figures=contact_figures,
        )


def compute_read(
    data: CrmFolder,
    *,
    as_of: datetime,
    config: MetricsConfig,
    with_matches: bool = False,
    contact_figures: bool = True,
) -> Computed:
    """The document of a folder already read: its rejected and left-out rows included."""
    if with_matches:
        document, matches = compute_with_matches(
            data.accounts,
            data.contacts,
            data.responses,
            as_of=as_of,
            config=config,
            rejected=data.rejected,
            excluded=data.excluded,
            contact_figures=contact_figures,
        )
        return Computed(document, data.accounts, matches)
    document = compute_document(
        data.accounts,
        data.contacts,
        data.responses,
        as_of=as_of,
        config=config,
        rejected=data.rejected,
        excluded=data.excluded,
        contact_figures=contact_figures,
    )
    return Computed(document, data.accounts, [])
