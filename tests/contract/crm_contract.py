"""The contract every CRM connector passes (Salesforce, HubSpot, the plain-file CRM).

How to plug a connector in: write a harness class implementing ``CrmHarness`` for
your CRM (usually around a fake at the HTTP boundary), then a test module in this
folder::

    from crm_contract import CrmContract

    class TestMyCrmContract(CrmContract):
        @pytest.fixture
        def crm_harness(self) -> Iterator[MyHarness]:
            with my_fake_crm() as fake:
                yield MyHarness(fake)

Every ``test_*`` of the contract (``contract_reading``, ``contract_writing``,
``contract_cycles``) then runs against your connector. What the contract means:

- a full read (cursor None) returns every live account and contact;
- an incremental read from the cursor of an earlier read, merged into that read,
  equals a full read now: records are upserted by id and ``deleted_ids`` removed,
  or, when a page says ``snapshot``, the read's records replace the state (a source
  without change tracking); it may return unchanged records again, but must return
  the changed ones, each exactly as a full read returns it;
- ``check_fields`` is clean for a provisioned CRM and names a missing field together
  with ``ax-agent crm provision <crm>`` (when the CRM has a schema at all);
- ``write`` changes exactly the given fields of exactly the given records, answers
  one outcome per update in order, reports a refused record without failing the
  rest (when the CRM can refuse one), and every full batch (``max_write_batch``)
  is one counted update call;
- figures planned by ``agent.sync.writeback`` and written read back, in the connector's
  ``crm_values``, as values the planner takes as equal: a second cycle with nothing
  changed makes zero update calls, and one with a changed figure writes only that.

A harness declares what does not apply to its CRM (``refuses_records``,
``has_schema``); those tests are skipped with the reason, never faked.
"""

from __future__ import annotations

from contract_cycles import CycleContract
from contract_harness import CrmHarness
from contract_reading import ReadingContract
from contract_writing import WritingContract

__all__ = ["CrmContract", "CrmHarness"]


class CrmContract(ReadingContract, WritingContract, CycleContract):
    """Subclass in a ``Test…`` class and supply the ``crm_harness`` fixture."""
