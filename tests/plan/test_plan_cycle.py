"""The coverage plan in the agent: the job stores it, survey_next is written from it."""

from __future__ import annotations

import csv
from pathlib import Path

from agent.core.contract import FieldsConfig
from agent.sources.files import written_file
from tests.service.agentkit import agent_settings, build_agent


def _survey_next(folder: Path) -> dict[str, str]:
    with written_file(folder, "contact").open(encoding="utf-8", newline="") as handle:
        return {row["id"]: row["survey_next"] for row in csv.DictReader(handle)}


def test_write_back_marks_planned_contacts_and_a_second_run_writes_nothing(
    tmp_path: Path,
) -> None:
    settings = agent_settings(tmp_path, plan={"write_back": True, "target": 0.9})
    agent = build_agent(settings)
    first = {r.job: r for r in agent.run_once()}
    assert first["coverage_plan"].counts["planned_contacts"] > 0
    planned = agent.store.survey_plan_ids("files")
    assert len(planned) == first["coverage_plan"].counts["planned_contacts"]

    marks = _survey_next(settings.files.path)
    assert {cid for cid, value in marks.items() if value == "true"} == planned
    assert {value for cid, value in marks.items() if cid not in planned} == {"false"}

    again = {r.job: r for r in agent.run_once()}
    assert again["coverage_plan"].counts == {"plan_fresh": 1}
    assert again["writeback"].counts["planned_records"] == 0
    assert again["writeback"].counts["written"] == 0


def test_survey_next_is_opt_in(tmp_path: Path) -> None:
    settings = agent_settings(tmp_path)
    assert "survey_next" not in {s.logical for s in settings.fields.specs()}
    agent = build_agent(settings)
    results = {r.job: r for r in agent.run_once()}
    assert results["coverage_plan"].counts["planned_contacts"] > 0  # the digest still has it
    with written_file(settings.files.path, "contact").open(encoding="utf-8") as handle:
        assert "survey_next" not in handle.readline()


def test_plan_write_back_enables_the_field_unless_the_admin_disabled_it(tmp_path: Path) -> None:
    on = agent_settings(tmp_path, plan={"write_back": True})
    spec = next(s for s in on.fields.specs() if s.logical == "survey_next")
    assert (spec.object, spec.kind, spec.salesforce, spec.hubspot, spec.files) == (
        "contact",
        "boolean",
        "AX_Survey_Next__c",
        "ax_survey_next",
        "survey_next",
    )
    off = agent_settings(
        tmp_path / "b",
        plan={"write_back": True},
        fields=FieldsConfig.model_validate(
            {"overrides": {"contact.survey_next": {"enabled": False}}}
        ),
    )
    assert "survey_next" not in {s.logical for s in off.fields.specs()}
