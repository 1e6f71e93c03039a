"""The contract's write-back cycle tests (see ``crm_contract``)."""

from __future__ import annotations

from datetime import UTC, datetime

from contract_harness import ContractBase, CrmHarness
from contract_support import Mirror, contract_document, differences, plan, with_account

from agent.core.contract import ObjectKind
from agent.core.models import Account, Contact
from agent.state.store import StateStore
from agent.sync.cycle import plan_writeback, run_writeback, sync_crm

__all__ = ["CycleContract"]


class CycleContract(ContractBase):
    """Figures planned by ``agent.sync.writeback``, written, read back and planned again."""

    def test_written_figures_read_back_as_planned(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        doc = contract_document(ids)
        mirror = Mirror()
        mirror.sync(crm_harness.connector())
        counts = mirror.write_back(crm_harness.connector(), doc, crm_harness.specs)
        assert (counts["account"].written, counts["contact"].written) == (3, 4)
        assert counts["account"].failed == counts["contact"].failed == 0
        fresh = Mirror()
        fresh.sync(crm_harness.connector())
        for obj in ("account", "contact"):
            back = fresh.read_back(obj)
            again = plan(doc, crm_harness.specs, crm_harness.name, obj, back)
            assert again == [], differences(again, back)

    def test_written_figures_are_rounded_by_the_planner(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        mirror = Mirror()
        mirror.sync(crm_harness.connector())
        mirror.write_back(crm_harness.connector(), contract_document(ids), crm_harness.specs)
        acme = crm_harness.stored("account", ids["acme"])
        f = self.field
        assert acme[f(crm_harness, "account", "nps")] == 12.3
        assert acme[f(crm_harness, "account", "nps_strict")] == -33.4
        assert acme[f(crm_harness, "account", "contact_coverage")] == 13
        assert acme[f(crm_harness, "account", "tier_coverage")] == 67
        assert acme[f(crm_harness, "account", "health_score")] == 63
        assert acme[f(crm_harness, "account", "last_response_at")] == datetime(
            2026, 1, 30, 12, 5, 6, tzinfo=UTC
        )
        assert acme[f(crm_harness, "account", "tiers_missing")] == ("management",)
        initech = crm_harness.stored("account", ids["initech"])
        assert initech[f(crm_harness, "account", "nps")] is None
        assert initech[f(crm_harness, "account", "health_status")] == "no_feedback"
        assert initech[f(crm_harness, "account", "respondents")] == 0
        assert crm_harness.stored("contact", ids["di"])[f(crm_harness, "contact", "tier")] == (
            "unknown"
        )

    def test_second_cycle_with_nothing_changed_makes_zero_update_calls(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        doc = contract_document(ids)
        mirror = Mirror()
        mirror.sync(crm_harness.connector())
        before = crm_harness.update_calls()
        first = mirror.write_back(crm_harness.connector(), doc, crm_harness.specs)
        assert first["account"].calls == first["contact"].calls == 1
        assert crm_harness.update_calls() == before + 2
        mirror.sync(crm_harness.connector())  # incremental: brings the written values back
        for obj in ("account", "contact"):
            back = mirror.read_back(obj)
            again = plan(doc, crm_harness.specs, crm_harness.name, obj, back)
            assert again == [], differences(again, back)
        second = mirror.write_back(crm_harness.connector(), doc, crm_harness.specs)
        assert second["account"].calls == second["contact"].calls == 0
        assert crm_harness.update_calls() == before + 2

    def test_the_agents_own_cycle_with_nothing_changed_makes_zero_update_calls(
        self, crm_harness: CrmHarness, ids: dict[str, str], sqlite_url: str
    ) -> None:
        """``agent.sync.cycle`` with a real state store: sync, plan, write; then again."""
        doc = contract_document(ids)
        with StateStore.open(sqlite_url) as store:
            sync_crm(store, crm_harness.connector())
            connector = crm_harness.connector()
            first = plan_writeback(store, connector, doc, crm_harness.specs)
            assert first.records == 7
            before = crm_harness.update_calls()
            counts = run_writeback(store, connector, first)
            assert (counts.written, counts.failed, counts.calls) == (7, 0, 2)
            assert crm_harness.update_calls() == before + 2
            sync_crm(store, crm_harness.connector())
            mirrored: dict[ObjectKind, list[Account] | list[Contact]] = {
                "account": store.load_accounts(crm_harness.name),
                "contact": store.load_contacts(crm_harness.name),
            }
            for obj, records in mirrored.items():  # the mirror alone, without our own record
                back = {r.id: dict(r.crm_values) for r in records}
                again = plan(doc, crm_harness.specs, crm_harness.name, obj, back)
                assert again == [], differences(again, back)
            connector = crm_harness.connector()
            second = plan_writeback(store, connector, doc, crm_harness.specs)
            assert second.records == 0, second.updates
            assert run_writeback(store, connector, second).calls == 0
        assert crm_harness.update_calls() == before + 2

    def test_next_cycle_writes_only_the_changed_figures(
        self, crm_harness: CrmHarness, ids: dict[str, str]
    ) -> None:
        doc = contract_document(ids)
        mirror = Mirror()
        mirror.sync(crm_harness.connector())
        mirror.write_back(crm_harness.connector(), doc, crm_harness.specs)
        mirror.sync(crm_harness.connector())
        acme, globex = ids["acme"], ids["globex"]
        # nps_strict moves within its rounding (-33.4 either way); nps becomes null.
        moved = with_account(doc, acme, nps=None, nps_strict=-33.36)
        changed = with_account(
            moved, globex, health_score=41.0, health_status="neutral", at_risk=False
        )
        f = self.field
        nps = f(crm_harness, "account", "nps")
        expected = {
            acme: {nps: None},
            globex: {
                f(crm_harness, "account", "health_score"): 41,
                f(crm_harness, "account", "health_status"): "neutral",
                f(crm_harness, "account", "at_risk"): False,
            },
        }
        back = mirror.read_back("account")
        planned = plan(changed, crm_harness.specs, crm_harness.name, "account", back)
        assert {u.record_id: dict(u.values) for u in planned} == expected
        before = crm_harness.update_calls()
        counts = mirror.write_back(crm_harness.connector(), changed, crm_harness.specs)
        assert (counts["account"].written, counts["contact"].calls) == (2, 0)
        assert crm_harness.update_calls() == before + 1
        stored = crm_harness.stored("account", globex)
        assert stored[f(crm_harness, "account", "health_status")] == "neutral"
        assert stored[f(crm_harness, "account", "at_risk")] is False
        assert crm_harness.stored("account", acme)[nps] is None
        mirror.sync(crm_harness.connector())
        again = plan(
            changed, crm_harness.specs, crm_harness.name, "account", mirror.read_back("account")
        )
        assert again == [], differences(again, mirror.read_back("account"))
