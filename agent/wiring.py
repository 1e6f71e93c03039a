"""Building the configured connectors: the only place agent code picks a vendor."""

from __future__ import annotations

from datetime import datetime

from agent.ports import CrmConnector, SurveySource
from agent.settings import Settings
from connectors.files import FilesCrm, FilesSurveys

__all__ = ["build_crm", "build_survey_sources"]


def build_crm(settings: Settings) -> CrmConnector:
    """The CRM connector ``settings.crm`` names."""
    if settings.crm == "files":
        return FilesCrm(settings.files.path)
    raise NotImplementedError(f"the {settings.crm} connector is not available in this build")


def build_survey_sources(settings: Settings, as_of: datetime) -> list[SurveySource]:
    """Every configured survey source."""
    if settings.crm == "files":
        return [FilesSurveys(settings.files.path, as_of)]
    return []
