"""The plain-file CRM connector's own files: figures written and read back by their names."""

from __future__ import annotations

from pathlib import Path

from agent.core.ports import FieldUpdate
from agent.sources.files import FilesCrm, written_file


def _folder(tmp_path: Path) -> FilesCrm:
    (tmp_path / "accounts.csv").write_text("id,name,domain,revenue\nA1,Acme,acme.example,10\n")
    (tmp_path / "contacts.csv").write_text("id,account_id,email,name,title,tier\n")
    return FilesCrm(tmp_path)


def test_figures_read_back_under_the_names_they_were_written_with(tmp_path: Path) -> None:
    """Field names are configurable: a name with capitals or spaces must come back as is."""
    crm = _folder(tmp_path)
    crm.write("account", [FieldUpdate("A1", {"NPS": 12.3, "Health Score": 5})])
    [batch] = crm.read_accounts(None)
    assert batch.records[0].crm_values == {"NPS": "12.3", "Health Score": "5"}


def test_rewriting_a_figure_keeps_one_column_per_field(tmp_path: Path) -> None:
    crm = _folder(tmp_path)
    crm.write("account", [FieldUpdate("A1", {"NPS": 12.3})])
    crm.write("account", [FieldUpdate("A1", {"NPS": 15.0})])
    assert written_file(tmp_path, "account").read_text().splitlines() == ["id,NPS", "A1,15.0"]
    [batch] = crm.read_accounts(None)
    assert batch.records[0].crm_values == {"NPS": "15.0"}
