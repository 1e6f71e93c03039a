"""One transaction on the state store, with every repository operation on it."""

from __future__ import annotations

from agent.state.ops_log import LogOps
from agent.state.ops_mirror import MirrorOps
from agent.state.ops_plan import PlanOps
from agent.state.ops_responses import ResponseOps
from agent.state.ops_settled import SettledOps
from agent.state.ops_written import WrittenOps

__all__ = ["StateTx"]


class StateTx(LogOps, MirrorOps, PlanOps, ResponseOps, SettledOps, WrittenOps):
    """Operations inside one open transaction: all of them commit, or none does.

    Obtain one from ``StateStore.transaction()``; use it to commit a cursor together
    with the data it covers::

        with store.transaction() as tx:
            tx.upsert_records("salesforce", "account", batch.records)
            tx.set_cursor("salesforce", "account", batch.cursor)
    """
