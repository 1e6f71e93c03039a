"""The CRM connector contract, run against HubSpot through ``HubSpotHarness``.

Written against the harness and the ``CrmConnector`` protocol only, so the same tests
can run for every CRM once a shared contract suite parametrises the ``harness`` fixture.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.config import FieldOverride, FieldsConfig
from agent.models import Account, Contact
from agent.ports import FieldUpdate
from tests.hubspot.harness import HubSpotHarness, open_harness


@pytest.fixture
def harness(hubspot_harness: HubSpotHarness) -> HubSpotHarness:
    return hubspot_harness


def _seed(harness: HubSpotHarness) -> tuple[str, str, str]:
    acme = harness.seed_account(
        Account(id="", name="Acme", domains=("acme.com", "acme.de"), revenue=5000.0)
    )
    beta = harness.seed_account(Account(id="", name="Beta", revenue=0.0))
    jane = harness.seed_contact(
        Contact(id="", account_id=acme, email="jane@acme.com", name="Jane Doe", title="CFO")
    )
    return acme, beta, jane


def test_identity(harness: HubSpotHarness) -> None:
    assert harness.connector.name == harness.name
    assert harness.connector.max_write_batch > 0


def test_full_read_returns_what_was_seeded(harness: HubSpotHarness) -> None:
    acme, beta, jane = _seed(harness)
    accounts = {a.id: a for b in harness.connector.read_accounts(None) for a in b.records}
    contacts = {c.id: c for b in harness.connector.read_contacts(None) for c in b.records}
    assert set(accounts) == {acme, beta}
    assert (accounts[acme].name, accounts[acme].domains, accounts[acme].revenue) == (
        "Acme",
        ("acme.com", "acme.de"),
        5000.0,
    )
    assert (contacts[jane].account_id, contacts[jane].email, contacts[jane].title) == (
        acme,
        "jane@acme.com",
        "CFO",
    )


def test_cursor_resumes_with_the_changes(harness: HubSpotHarness) -> None:
    """Cursors are inclusive: records at the boundary may come again, unchanged."""
    acme, beta, _ = _seed(harness)
    batches = list(harness.connector.read_accounts(None))
    first = {a.id: a for b in batches for a in b.records}
    assert batches[-1].cursor is not None
    harness.advance(3_600)
    again = list(harness.connector.read_accounts(batches[-1].cursor))
    assert all(a == first[a.id] for b in again for a in b.records)
    assert [d for b in again for d in b.deleted_ids] == []
    harness.advance(1)
    harness.rename("account", beta, "Beta GmbH")
    harness.delete("account", acme)
    changed = list(harness.connector.read_accounts(again[-1].cursor))
    names = {a.id: a.name for b in changed for a in b.records}
    assert names[beta] == "Beta GmbH"
    assert acme not in names
    assert [d for b in changed for d in b.deleted_ids] == [acme]


def test_written_values_read_back_equal(harness: HubSpotHarness) -> None:
    acme, _, jane = _seed(harness)
    values = {
        "ax_health_score": 64.0,
        "ax_health_status": "neutral",
        "ax_nps": -12.5,
        "ax_contact_coverage": 40.0,
        "ax_tiers_covered": ("executive", "frontline"),
        "ax_tier_misaligned": True,
        "ax_respondents": 7,
        "ax_last_response_at": datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC),
    }
    assert all(o.ok for o in harness.connector.write("account", [FieldUpdate(acme, values)]))
    assert harness.connector.write("contact", [FieldUpdate(jane, {"ax_tier": "executive"})])[0].ok
    back = harness.read_back("account", acme)
    assert {k: back[k] for k in values} == values
    assert harness.read_back("contact", jane)["ax_tier"] == "executive"
    [account] = [
        a for b in harness.connector.read_accounts(None) for a in b.records if a.id == acme
    ]
    assert {k: account.crm_values[k] for k in values} == values


def test_clearing_a_value(harness: HubSpotHarness) -> None:
    acme, _, _ = _seed(harness)
    harness.connector.write("account", [FieldUpdate(acme, {"ax_nps": 10.0})])
    harness.connector.write("account", [FieldUpdate(acme, {"ax_nps": None})])
    assert harness.read_back("account", acme)["ax_nps"] is None


def test_per_record_failures_do_not_fail_the_batch(harness: HubSpotHarness) -> None:
    acme, beta, _ = _seed(harness)
    harness.delete("account", beta)
    outcomes = harness.connector.write(
        "account",
        [FieldUpdate(acme, {"ax_respondents": 1}), FieldUpdate(beta, {"ax_respondents": 2})],
    )
    assert [(o.record_id, o.ok) for o in outcomes] == [(acme, True), (beta, False)]
    assert outcomes[1].error_code
    assert harness.read_back("account", acme)["ax_respondents"] == 1


def test_batches_are_bounded(harness: HubSpotHarness) -> None:
    size = harness.connector.max_write_batch
    with pytest.raises(ValueError, match=str(size)):
        harness.connector.write(
            "account", [FieldUpdate(str(i), {"ax_nps": 1.0}) for i in range(size + 1)]
        )
    assert harness.update_calls == 0


def test_field_check_names_what_is_missing(harness: HubSpotHarness) -> None:
    assert harness.connector.check_fields(harness.specs) == []
    specs = FieldsConfig(overrides={"account.nps": FieldOverride(hubspot="no_such_field")}).specs()
    [problem] = harness.connector.check_fields(specs)
    assert (problem.object, problem.field) == ("account", "no_such_field")
    assert "provision" in problem.fix


def test_the_harness_runs_without_pytest_fixtures() -> None:
    with open_harness() as harness:
        acme, _, jane = _seed(harness)
        contacts = [c for b in harness.connector.read_contacts(None) for c in b.records]
        assert [(c.id, c.account_id) for c in contacts] == [(jane, acme)]
