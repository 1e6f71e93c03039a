"""Checking the mapped properties, provisioning them, and the ``crm provision hubspot`` command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app, hubspot_cmd
from agent.config.settings import HubSpotSettings, PlanSettings, Settings
from agent.core.contract import FieldOverride, FieldsConfig, default_field_specs
from agent.core.ports import FieldUpdate
from connectors.hubspot import HubSpotConnector
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.harness import provision_all

MakeConnector = Callable[..., HubSpotConnector]
FIX = "ax-agent crm provision hubspot"


def test_a_fresh_portal_lacks_every_mapped_property(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    specs = default_field_specs()
    problems = make_connector().check_fields(specs)
    assert [(p.object, p.field) for p in problems] == [(s.object, s.hubspot) for s in specs]
    assert all(p.problem == "missing in HubSpot" and p.fix == FIX for p in problems)
    assert (
        "account field ax_health_score: missing in HubSpot. Fix: ax-agent crm provision hubspot"
        in [str(p) for p in problems]
    )
    assert [c.path for c in portal.requests] == [
        "/crm/v3/properties/companies",
        "/crm/v3/properties/contacts",
    ]


def test_a_provisioned_portal_has_no_problems(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    assert make_connector().check_fields(default_field_specs()) == []


def test_wrong_type_read_only_and_missing_options_are_named(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    portal.define("companies", "ax_nps", "string", "text")
    portal.define("companies", "ax_respondents", "number", "number", read_only=True)
    portal.define(
        "companies", "ax_health_status", "enumeration", "select", options=("healthy", "neutral")
    )
    problems = {p.field: p for p in make_connector().check_fields(default_field_specs())}
    assert set(problems) == {"ax_nps", "ax_respondents", "ax_health_status"}
    assert (
        problems["ax_nps"].problem == "is string/text but the agent writes number (number/number)"
    )
    assert (
        problems["ax_nps"].fix
        == "map fields.overrides.account.nps.hubspot to a number/number property"
    )
    assert "read-only" in problems["ax_respondents"].problem
    assert problems["ax_health_status"].problem == "lacks the option(s) no_feedback, at_risk"
    assert problems["ax_health_status"].fix == FIX


def test_misconfigured_read_properties_are_named(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    connector = make_connector(
        revenue_property="arr", tier_property="persona", extra_properties=["region"]
    )
    problems = {(p.object, p.field): p for p in connector.check_fields(default_field_specs())}
    assert set(problems) == {("account", "arr"), ("account", "region"), ("contact", "persona")}
    assert (
        problems[("account", "arr")].fix
        == "set hubspot.revenue_property to an existing property name"
    )


def test_provisioning_creates_the_group_and_every_property(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    specs = default_field_specs()
    plan = connector.plan_provisioning(specs)
    assert plan.lines()[0] == "create property group ax_agent ('AX Agent') on companies"
    assert len(plan.actions) == 2 + len(specs)
    assert portal.calls("POST") == []

    result = connector.apply_provisioning(plan)

    assert result.failed == []
    assert connector.check_fields(specs) == []
    groups = portal.calls("POST", r"/crm/v3/properties/\w+/groups")
    assert [g.body for g in groups] == [
        {"name": "ax_agent", "label": "AX Agent", "displayOrder": -1}
    ] * 2
    [companies] = portal.calls("POST", "/crm/v3/properties/companies/batch/create")
    created = {p["name"]: p for p in companies.body["inputs"]}
    assert created["ax_health_score"]["type"] == "number"
    assert created["ax_health_status"]["fieldType"] == "select"
    assert [o["value"] for o in created["ax_health_status"]["options"]] == [
        "no_feedback",
        "healthy",
        "neutral",
        "at_risk",
    ]
    assert created["ax_tiers_covered"]["fieldType"] == "checkbox"
    assert (created["ax_at_risk"]["type"], created["ax_at_risk"]["fieldType"]) == (
        "bool",
        "booleancheckbox",
    )
    assert [o["value"] for o in created["ax_at_risk"]["options"]] == ["true", "false"]
    assert (
        created["ax_last_response_at"]["type"],
        created["ax_last_response_at"]["fieldType"],
    ) == (
        "datetime",
        "date",
    )
    assert all(p["groupName"] == "ax_agent" for p in created.values())
    assert connector.plan_provisioning(specs).actions == ()


def test_provisioned_properties_take_the_agents_values(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    connector.apply_provisioning(connector.plan_provisioning(default_field_specs()))
    company = portal.add_company(name="A")
    update = FieldUpdate(
        company,
        {
            "ax_health_status": "at_risk",
            "ax_tiers_missing": ("frontline",),
            "ax_at_risk": True,
            "ax_health_score": 12.0,
        },
    )
    assert connector.write("account", [update])[0].ok


def test_missing_options_are_added_and_conflicts_left_alone(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    portal.define("companies", "ax_health_status", "enumeration", "select", options=("healthy",))
    portal.define("companies", "ax_nps", "string", "text")
    connector = make_connector()
    plan = connector.plan_provisioning(default_field_specs())
    assert plan.lines() == [
        "add option(s) no_feedback, neutral, at_risk to companies property ax_health_status",
        "cannot fix: account field ax_nps: is string/text but the agent writes number"
        " (number/number). Fix: map fields.overrides.account.nps.hubspot"
        " to a number/number property",
    ]
    connector.apply_provisioning(plan)
    [patch] = portal.calls("PATCH")
    assert patch.path == "/crm/v3/properties/companies/ax_health_status"
    assert [o["value"] for o in patch.body["options"]] == [
        "healthy",
        "no_feedback",
        "neutral",
        "at_risk",
    ]
    remaining = connector.check_fields(default_field_specs())
    assert [p.field for p in remaining] == ["ax_nps"]


def test_renamed_fields_are_provisioned_under_their_new_names(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    fields = FieldsConfig(
        overrides={
            "account.nps": FieldOverride(hubspot="cx_nps"),
            "contact.tier": FieldOverride(enabled=False),
        }
    )
    plan = make_connector().plan_provisioning(fields.specs())
    names = [a.definition["name"] for a in plan.actions if hasattr(a, "definition")]
    assert "cx_nps" in names
    assert "ax_nps" not in names
    assert "ax_tier" not in names


# -- the command ---------------------------------------------------------------------


@pytest.fixture
def settings(portal: FakePortal, base_url: str) -> Settings:
    return Settings(
        crm="hubspot", hubspot=HubSpotSettings(access_token=portal.token, base_url=base_url)
    )


def test_print_only_reads_and_changes_nothing(portal: FakePortal, settings: Settings) -> None:
    lines: list[str] = []
    assert hubspot_cmd.provision_hubspot(settings, True, echo=lines.append) == 0
    assert lines[0] == "would create property group ax_agent ('AX Agent') on companies"
    assert any(line.startswith("would create companies property ax_nps") for line in lines)
    assert portal.calls("POST") == []


def test_provisioning_then_nothing_left_to_do(portal: FakePortal, settings: Settings) -> None:
    lines: list[str] = []
    assert hubspot_cmd.provision_hubspot(settings, False, echo=lines.append) == 0
    assert not [line for line in lines if line.startswith(("failed", "still wrong"))]
    again: list[str] = []
    assert hubspot_cmd.provision_hubspot(settings, True, echo=again.append) == 0
    assert again == ["nothing to do: every mapped property exists with the right type"]


def test_conflicts_make_the_command_fail(portal: FakePortal, settings: Settings) -> None:
    portal.define("companies", "ax_nps", "string", "text")
    lines: list[str] = []
    assert hubspot_cmd.provision_hubspot(settings, False, echo=lines.append) == 1
    assert any(line.startswith("still wrong: account field ax_nps") for line in lines)


def test_a_missing_token_is_a_config_error(settings: Settings) -> None:
    settings.hubspot.access_token = None
    lines: list[str] = []
    assert hubspot_cmd.provision_hubspot(settings, True, echo=lines.append) == 2
    assert "AX_HUBSPOT__ACCESS_TOKEN" in lines[0]


def test_registered_under_crm_provision(
    portal: FakePortal, base_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AX_HUBSPOT__ACCESS_TOKEN", portal.token)
    monkeypatch.setenv("AX_HUBSPOT__BASE_URL", base_url)
    monkeypatch.delenv("AX_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no config/ax-agent.yaml here

    dry = CliRunner().invoke(app, ["crm", "provision", "hubspot", "--print"])
    assert dry.exit_code == 0, dry.output
    assert "would create companies property ax_health_score" in dry.output
    assert portal.calls("POST") == []

    real = CliRunner().invoke(app, ["crm", "provision", "hubspot"])
    assert real.exit_code == 0, real.output
    assert len(portal.calls("POST", "/crm/v3/properties/companies/batch/create")) == 1


def test_planned_updates_print_as_batch_requests(make_connector: MakeConnector) -> None:
    updates = [FieldUpdate(str(i), {"ax_nps": float(i)}) for i in range(150)]
    lines = hubspot_cmd.planned_update_lines(make_connector(), "account", updates)
    assert len(lines) == 2
    assert '"path": "/crm/v3/objects/companies/batch/update"' in lines[0]
    assert lines[1].count('"id"') == 50


def test_survey_next_is_a_contact_checkbox_once_the_plan_writes_back(
    portal: FakePortal, settings: Settings
) -> None:
    planned = settings.model_copy(update={"plan": PlanSettings(write_back=True)})
    planned = Settings.model_validate(planned.model_dump())
    lines: list[str] = []
    assert hubspot_cmd.provision_hubspot(planned, True, echo=lines.append) == 0
    assert any(line.startswith("would create contacts property ax_survey_next") for line in lines)
    unplanned: list[str] = []
    assert hubspot_cmd.provision_hubspot(settings, True, echo=unplanned.append) == 0
    assert not [line for line in unplanned if "ax_survey_next" in line]


def test_history_fields_are_company_properties_once_history_writes_back(
    portal: FakePortal, settings: Settings
) -> None:
    from agent.config.settings import HistorySettings

    written = settings.model_copy(update={"history": HistorySettings(write_back=True)})
    written = Settings.model_validate(written.model_dump())
    lines: list[str] = []
    assert hubspot_cmd.provision_hubspot(written, True, echo=lines.append) == 0
    assert any(
        line.startswith("would create companies property ax_health_trend_30d") for line in lines
    )
    assert any(
        line.startswith("would create companies property ax_health_status_since") for line in lines
    )
    plain: list[str] = []
    assert hubspot_cmd.provision_hubspot(settings, True, echo=plain.append) == 0
    assert not [line for line in plain if "ax_health_trend_30d" in line]
