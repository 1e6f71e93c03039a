"""Reading the plain-file CRM folder: positions, rejections, write-back values, errors."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.core.compute import Excluded
from agent.core.models import NO_VALUES, SHARED_LENGTH, Account, Dropped, Rejected, shared_text
from agent.sources.plainfiles import (
    CrmFileNotFoundError,
    CrmFormatError,
    read_accounts,
    read_contacts,
    read_crm_folder,
    read_csv_records,
    read_response_file,
    read_responses,
    read_written,
)
from tests.core_builders import AS_OF

RESPONSE_HEADER = (
    "response_id,email,score,submitted_at,driver,comment,account_hint,loop_closed_at\n"
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


MAY2 = "2025-05-02T00:00:00Z"
MAY2_CEST = "2025-05-02T00:00:00+02:00"


def jl(**fields: object) -> str:
    """One JSON Lines record."""
    return json.dumps(fields) + "\n"


def crm_folder(tmp_path: Path, responses: str | None = None) -> Path:
    write(
        tmp_path,
        "accounts.csv",
        "id,name,domain,revenue,revenue_potential,owner_email\nA1,Alpha,alpha.com,100,,\n",
    )
    write(
        tmp_path,
        "contacts.csv",
        "id,account_id,email,name,title,tier\nC1,A1,ann@alpha.com,Ann,CEO,\n",
    )
    if responses is not None:
        write(tmp_path, "responses.csv", RESPONSE_HEADER + responses)
    return tmp_path


# --- CSV records --------------------------------------------------------------------------


def test_positions_count_data_records_not_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.csv",
        'id,comment\n\n1,"two\nlines"\n,\n  , \t\n2,plain\r\n3,"quoted ""x"""\n',
    )
    records = list(read_csv_records(path))
    assert [(r.position, r.fields["id"], r.fields["comment"]) for r in records] == [
        (1, "1", "two\nlines"),
        (2, "2", "plain"),
        (3, "3", 'quoted "x"'),
    ]
    assert records[0].raw == '1,"two\nlines"'
    assert records[1].raw == "2,plain"


def test_a_row_with_fewer_or_more_fields_than_the_header_is_wrong_field_count(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "x.csv", "a,b,c\n1\n1,2,3,4,5\n1,2,3\n")
    records = list(read_csv_records(path))
    assert [(r.position, r.fault, r.fault_value, r.fields) for r in records] == [
        (1, "wrong_field_count", "1", {}),
        (2, "wrong_field_count", "1,2,3,4,5", {}),
        (3, None, "", {"a": "1", "b": "2", "c": "3"}),
    ]


def test_header_is_trimmed_lowercased_and_bom_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes("\ufeff ID ,Name\t\nx,y\n".encode())
    assert [r.fields for r in read_csv_records(path)] == [{"id": "x", "name": "y"}]


def test_empty_file_has_no_records(tmp_path: Path) -> None:
    assert list(read_csv_records(write(tmp_path, "x.csv", ""))) == []


def test_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes("id,name\nA1,Caf\xe9\n".encode("latin-1"))
    with pytest.raises(CrmFormatError, match=r"accounts\.csv is not UTF-8"):
        list(read_csv_records(path))


def test_an_over_long_field_rejects_its_row_only(tmp_path: Path) -> None:
    long = "x" * 200_000
    path = write(
        tmp_path,
        "responses.csv",
        RESPONSE_HEADER + f'r1,a@x.com,9,{MAY2},,"{long}",,\n' + f"r2,a@x.com,9,{MAY2},,short,,\n",
    )
    responses, rejected = read_response_file(path, AS_OF)
    assert [r.response_id for r in responses] == ["r2"]
    assert rejected == [Rejected("responses.csv", 1, "field_too_large", "x" * 80)]


def test_an_unterminated_quote_on_the_last_row_is_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "responses.csv",
        RESPONSE_HEADER
        + f"r1,a@x.com,9,{MAY2},,fine,,\n"
        + f'r2,b@x.com,3,{MAY2},,"never closed,,\nr3,c@x.com,9,{MAY2},,,,\n',
    )
    responses, rejected = read_response_file(path, AS_OF)
    assert [r.response_id for r in responses] == ["r1"]
    assert [(r.position, r.reason) for r in rejected] == [(2, "unterminated_quote")]
    assert rejected[0].value.startswith("r2,b@x.com,3,")


def test_a_quote_inside_an_unquoted_last_field_is_text(tmp_path: Path) -> None:
    path = write(tmp_path, "responses.csv", RESPONSE_HEADER + f'r1,a@x.com,9,{MAY2},,say "hi,,')
    responses, rejected = read_response_file(path, AS_OF)
    assert rejected == []
    assert responses[0].comment == 'say "hi'


def test_missing_required_column_names_the_nearest_header(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "id,name,domain,annual_revenue\nA1,Alpha,a.com,1\n")
    with pytest.raises(
        CrmFormatError,
        match=r"accounts\.csv: required column `revenue` is missing from the header; "
        r"did you mean `annual_revenue`\?",
    ):
        read_accounts(path)


def test_missing_id_column_lists_the_header_when_nothing_is_near(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "name,revenue\nAlpha,1\n")
    with pytest.raises(CrmFormatError, match=r"`id` is missing .*the header has `name`, `revenue`"):
        read_accounts(path)


@pytest.mark.parametrize(
    ("name", "header", "column", "near"),
    [
        ("contacts.csv", "id,account_id,mail,name", "email", "mail"),
        ("contacts.csv", "id,account,email", "account_id", "account"),
        (
            "responses.csv",
            "response_id,email,scroe,submitted_at",
            "score",
            "scroe",
        ),
        ("responses.csv", "id,email,score,submitted_at", "response_id", "id"),
    ],
)
def test_every_required_column_is_checked(
    tmp_path: Path, name: str, header: str, column: str, near: str
) -> None:
    crm_folder(tmp_path, "")
    write(tmp_path, name, header + "\n")
    with pytest.raises(CrmFormatError, match=rf"{name}: required column `{column}` .*`{near}`"):
        read_crm_folder(tmp_path, AS_OF)


def test_a_header_differing_in_case_or_spaces_is_accepted_with_a_notice(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "ID, Revenue ,name\nA1,5,Alpha\n")
    with capture_logs() as events:
        accounts = read_accounts(path)
    assert [(a.id, a.revenue) for a in accounts] == [("A1", 5.0)]
    notices = [e for e in events if e["event"] == "crm_file.header_normalised"]
    assert len(notices) == 1
    assert "'ID' read as 'id'" in notices[0]["columns"]
    assert "' Revenue ' read as 'revenue'" in notices[0]["columns"]


def test_a_repeated_header_name_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "id,revenue,Revenue\nA1,5,6\n")
    with pytest.raises(CrmFormatError, match=r"column `revenue` appears twice .*columns 2 and 3"):
        read_accounts(path)


# --- accounts -----------------------------------------------------------------------------


def test_accounts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "accounts.csv",
        "id,name,domain,revenue,revenue_potential,owner_email,Segment,region\n"
        'A1,"Alpha, Inc.",https://www.Alpha.com/about; alpha.de ;,600000,,owner@v.example,'
        "Enterprise,EU\n"
        "A2,Beta,,,400000.5, ,SMB,\n",
    )
    alpha, beta = read_accounts(path)
    assert alpha.id == "A1"
    assert alpha.name == "Alpha, Inc."
    assert alpha.domains == ("https://www.Alpha.com/about", "alpha.de")
    assert (alpha.revenue, alpha.revenue_potential) == (600000.0, None)
    assert alpha.owner_email == "owner@v.example"
    assert alpha.attributes == {"segment": "Enterprise", "region": "EU"}
    assert (beta.revenue, beta.revenue_potential, beta.owner_email) == (0.0, 400000.5, None)
    assert beta.domains == ()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",NoId,,1,,", "missing_id"),
        ("A9,Bad,,1 000,,", "invalid_revenue"),
        ("A9,Bad,,abc,,", "invalid_revenue"),
        ("A9,Bad,,-5,,", "invalid_revenue"),
        ("A9,Bad,,nan,,", "invalid_revenue"),
        ("A9,Bad,,1_000,,", "invalid_revenue"),
        ("A9,Bad,,10,lots,", "invalid_revenue_potential"),
        ("A9,Bad,,10,inf,", "invalid_revenue_potential"),
        ("A1,Again,,10,,", "duplicate_id"),
        (",NoId,,abc,,", "missing_id"),  # the id is checked first
    ],
)
def test_bad_account_rows_are_rejected_and_the_rest_go_on(
    tmp_path: Path, row: str, reason: str
) -> None:
    path = write(
        tmp_path,
        "accounts.csv",
        f"id,name,domain,revenue,revenue_potential,owner_email\nA1,Alpha,,1e3,,\n{row}\nA3,Gamma,,2.5,,\n",
    )
    rejected: list[Rejected] = []
    with capture_logs() as events:
        accounts = read_accounts(path, rejected=rejected)
    assert [(a.id, a.revenue) for a in accounts] == [("A1", 1000.0), ("A3", 2.5)]
    assert [(r.source, r.position, r.reason) for r in rejected] == [("accounts.csv", 2, reason)]
    assert [e["event"] for e in events] == ["crm_file.rows_rejected"]


@pytest.mark.parametrize(
    ("row", "value"),
    [
        ("A9,Bad,,abc,,", "abc"),
        ("A9,Bad,, 1 000 ,,", " 1 000 "),
        ("A9,Bad,,10,lots,", "lots"),
        ("A1,Again,,10,,", "A1"),
        (",NoId,,abc,,", ""),
        ("A9,Bad,,10", "A9,Bad,,10"),
    ],
)
def test_an_account_reject_shows_the_offending_value(tmp_path: Path, row: str, value: str) -> None:
    path = write(
        tmp_path,
        "accounts.csv",
        f"id,name,domain,revenue,revenue_potential,owner_email\nA1,Alpha,,1e3,,\n{row}\n",
    )
    rejected: list[Rejected] = []
    read_accounts(path, rejected=rejected)
    assert [r.value for r in rejected] == [value]


def test_a_reject_value_is_cut_at_80_characters(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "id,revenue\nA1," + "9x" * 100 + "\n")
    rejected: list[Rejected] = []
    read_accounts(path, rejected=rejected)
    assert rejected == [Rejected("accounts.csv", 1, "invalid_revenue", "9x" * 40)]


def test_written_values_fill_crm_values(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "id,name,revenue\nA1,Alpha,\nA2,Beta,\n")
    accounts = read_accounts(path, written={"A1": {"nps": "12.5"}})
    assert [a.crm_values for a in accounts] == [{"nps": "12.5"}, {}]


# --- contacts -----------------------------------------------------------------------------


def test_contacts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "contacts.csv",
        "id,account_id,email,name,title,tier\n"
        "C1,A1, Ann@Alpha.com ,Ann,Chief Executive Officer,\n"
        "C2,NOPE,x@y.com,X,,\n"
        "C3,A1,,Dora,Analyst, Executive \n"
        ",A1,z@y.com,Z,,\n"
        "C1,A1,again@y.com,Again,,\n",
    )
    rejected: list[Rejected] = []
    excluded = Excluded(accounts=[Account("A9", "Rejected")])
    contacts = read_contacts(
        path,
        {"A1"},
        rejected=rejected,
        written={"C3": {"tier": "executive"}},
        excluded=excluded,
    )
    assert [(c.id, c.email, c.title, c.crm_tier) for c in contacts] == [
        ("C1", "Ann@Alpha.com", "Chief Executive Officer", None),
        ("C3", None, "Analyst", "Executive"),
    ]
    assert contacts[1].crm_values == {"tier": "executive"}
    assert rejected == [
        Rejected("contacts.csv", 4, "missing_id", ""),
        Rejected("contacts.csv", 5, "duplicate_id", "C1"),
    ]
    assert excluded.dropped == [
        Dropped("contacts.csv", 2, "unknown_account"),
        Dropped("contacts.csv", 3, "missing_email"),
        Dropped("contacts.csv", 4, "missing_id"),
        Dropped("contacts.csv", 5, "duplicate_id"),
    ]


def test_contacts_of_a_rejected_account_are_dropped_and_kept_aside(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "contacts.csv",
        "id,account_id,email\nC1,A1,a@a.com\nC2,A9,b@b.com\n",
    )
    excluded = Excluded(accounts=[Account("A9", "Rejected")])
    contacts = read_contacts(path, {"A1"}, excluded=excluded)
    assert [c.id for c in contacts] == ["C1"]
    assert [c.id for c in excluded.contacts] == ["C2"]
    assert excluded.dropped == [Dropped("contacts.csv", 2, "account_rejected")]


# --- responses ----------------------------------------------------------------------------


def test_responses_csv_positions_and_reasons(tmp_path: Path) -> None:
    folder = crm_folder(
        tmp_path,
        'r1,a@x.com,9,2025-05-01T00:00:00Z,Support,"multi\nline",,\n'
        "\n"
        'r1,a@x.com,9,2025-05-01T00:00:00Z,Support,"multi\nline",,\n'  # identical: ignored
        "r1,a@x.com,9,2025-05-01T00:00:00Z,Support,other,,\n"
        "r2,b@x.com,7.5,2025-05-01T00:00:00Z,,,,\n"
        "r3,c@x.com,8,,,,,\n"
        "r4,d@x.com,8,2025-05-01T00:00:00Z,,,\n",
    )
    responses, rejected = read_responses(folder, AS_OF)
    assert [r.response_id for r in responses] == ["r1"]
    assert responses[0].comment == "multi\nline"
    assert rejected == [
        Rejected("responses.csv", 3, "duplicate_response_id", "r1"),
        Rejected("responses.csv", 4, "invalid_score", "7.5"),
        Rejected("responses.csv", 5, "invalid_submitted_at", ""),
        Rejected("responses.csv", 6, "wrong_field_count", "r4,d@x.com,8,2025-05-01T00:00:00Z,,,"),
    ]
    assert [r.account_hint for r in responses] == [None]


def test_a_repeat_differing_in_csv_quoting_only_is_a_duplicate(tmp_path: Path) -> None:
    folder = crm_folder(
        tmp_path,
        'r1,a@x.com,9,2025-05-01T00:00:00Z,,,,\n"r1",a@x.com,9,2025-05-01T00:00:00Z,,,,\n',
    )
    _, rejected = read_responses(folder, AS_OF)
    assert rejected == [Rejected("responses.csv", 2, "duplicate_response_id", "r1")]


def test_identical_last_line_without_newline_is_ignored(tmp_path: Path) -> None:
    folder = crm_folder(
        tmp_path, "r1,a@x.com,9,2025-05-01T00:00:00Z,,,,\r\nr1,a@x.com,9,2025-05-01T00:00:00Z,,,,"
    )
    responses, rejected = read_responses(folder, AS_OF)
    assert (len(responses), rejected) == (1, [])


def test_jsonl_after_csv(tmp_path: Path) -> None:
    folder = crm_folder(tmp_path, "r1,a@x.com,9,2025-05-01T00:00:00Z,,,,\n")
    write(
        folder,
        "responses.jsonl",
        "".join(
            [
                jl(response_id="r1", email="b@x.com", score=10, submitted_at=MAY2),
                "\n",
                jl(response_id="j2", score="08", submitted_at=MAY2_CEST, driver=None),
                "not json\n",
                "[1, 2]\n",
                jl(response_id="j3", score=7.0, submitted_at=MAY2),
                jl(response_id="j4", score=9, submitted_at=MAY2, loop_closed_at=5),
                jl(response_id="j2", score="08", submitted_at=MAY2_CEST, driver=None),
                jl(response_id="j2", score="08", submitted_at=MAY2_CEST, driver=None)
                .replace(", ", ",")
                .replace(": ", ":"),
            ]
        ),
    )
    responses, rejected = read_responses(folder, AS_OF)
    assert [(r.source, r.response_id, r.score) for r in responses] == [
        ("responses.csv", "r1", 9),
        ("responses.jsonl", "r1", 10),
        ("responses.jsonl", "j2", 8),
        ("responses.jsonl", "j4", 9),
    ]
    assert responses[2].submitted_at == datetime(2025, 5, 1, 22, tzinfo=UTC)
    assert responses[3].loop_closed_at is None
    assert rejected == [
        Rejected("responses.jsonl", 3, "invalid_record", "not json"),
        Rejected("responses.jsonl", 4, "invalid_record", "[1, 2]"),
        Rejected("responses.jsonl", 5, "invalid_score", "7.0"),
        Rejected("responses.jsonl", 8, "duplicate_response_id", "j2"),
    ]


def test_jsonl_poison_lines_are_invalid_records(tmp_path: Path) -> None:
    """A line nested 100,000 deep and a lone surrogate: rejected, the rest read."""
    deep = '{"response_id": "d", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    lone = jl(response_id="s", score=9, submitted_at=MAY2, comment="\ud800").strip()
    assert "\\ud800" in lone  # json.dumps escapes the lone surrogate
    good = jl(response_id="g", score=9, submitted_at=MAY2)
    path = write(tmp_path, "drop.jsonl", deep + "\n" + lone + "\n" + good)
    responses, rejected = read_response_file(path, AS_OF)
    assert [r.response_id for r in responses] == ["g"]
    assert [(r.position, r.reason) for r in rejected] == [
        (1, "invalid_record"),
        (2, "invalid_record"),
    ]
    assert rejected[0].value == deep[:80]
    assert rejected[1].value == lone[:80]


def test_jsonl_only(tmp_path: Path) -> None:
    folder = crm_folder(tmp_path)
    write(
        folder,
        "responses.jsonl",
        '{"response_id": "j", "score": 9, "submitted_at": "2025-05-02T00:00:00Z"}',
    )
    responses, rejected = read_responses(folder, AS_OF)
    assert [r.response_id for r in responses] == ["j"]
    assert rejected == []


def test_no_responses_file(tmp_path: Path) -> None:
    folder = crm_folder(tmp_path)
    with pytest.raises(CrmFileNotFoundError, match=r"neither responses\.csv nor responses\.jsonl"):
        read_responses(folder, AS_OF)
    assert read_responses(folder, AS_OF, required=False) == ([], [])


# --- write-back values --------------------------------------------------------------------


def test_read_written(tmp_path: Path) -> None:
    assert read_written(tmp_path / "ax_accounts.csv") == {}
    path = write(
        tmp_path,
        "ax_accounts.csv",
        "id,health_score,tiers_covered\nA1,50,executive;frontline\n,1,x\nA2,,\nA1,51,\n",
    )
    assert read_written(path) == {
        "A1": {"health_score": "51", "tiers_covered": ""},
        "A2": {"health_score": "", "tiers_covered": ""},
    }


# --- the folder ---------------------------------------------------------------------------


def test_read_crm_folder(tmp_path: Path) -> None:
    folder = crm_folder(
        tmp_path, "r1,ann@alpha.com,9,2025-05-01T00:00:00Z,,,,\nr2,x,99,2025-05-01T00:00:00Z,,,,\n"
    )
    write(folder, "accounts.csv", "id,name,revenue\nA1,Alpha,100\nA2,Beta,x\n")
    write(folder, "ax_accounts.csv", "id,nps\nA1,100.0\n")
    write(folder, "ax_contacts.csv", "id,tier\nC1,executive\n")
    crm = read_crm_folder(folder, AS_OF)
    assert [a.id for a in crm.accounts] == ["A1"]
    assert crm.accounts[0].crm_values == {"nps": "100.0"}
    assert [(c.id, c.crm_values) for c in crm.contacts] == [("C1", {"tier": "executive"})]
    assert [r.response_id for r in crm.responses] == ["r1"]
    assert crm.rejected == [
        Rejected("accounts.csv", 2, "invalid_revenue", "x"),
        Rejected("responses.csv", 2, "invalid_score", "99"),
    ]
    assert crm.excluded.dropped == [Dropped("accounts.csv", 2, "invalid_revenue")]
    assert [a.id for a in crm.excluded.accounts] == ["A2"]


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CrmFileNotFoundError, match="CRM folder not found") as caught:
        read_crm_folder(missing, AS_OF)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize("name", ["accounts.csv", "contacts.csv"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    folder = crm_folder(tmp_path, "")
    (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=f"CRM file not found: .*{name}"):
        read_crm_folder(folder, AS_OF)


def test_missing_file_in_missing_folder_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(CrmFileNotFoundError, match="CRM folder not found"):
        read_accounts(tmp_path / "nope" / "accounts.csv")


def test_an_exact_repeat_of_an_unmatched_answer_is_listed_once(tmp_path: Path) -> None:
    from agent.core.compute import compute_document

    line = "u1,someone@gmail.com,9,2025-05-01T00:00:00Z,,,,\n"
    folder = crm_folder(tmp_path, line + line + line.replace("u1", "u2"))
    crm = read_crm_folder(folder, AS_OF)
    document = compute_document(crm.accounts, crm.contacts, crm.responses, as_of=AS_OF)
    assert [(u.response_id, u.reason) for u in document.unmatched] == [
        ("u1", "free_mail_domain"),
        ("u2", "free_mail_domain"),
    ]
    assert crm.rejected == []


# --- memory: text that repeats is held once -------------------------------------------------


def test_repeated_contact_text_is_one_shared_string(tmp_path: Path) -> None:
    # A half-million-contact file repeats account ids, titles and tiers: each is held
    # once, as the stored mirror loads them, and a contact without written figures
    # holds the one shared empty mapping.
    path = write(
        tmp_path,
        "contacts.csv",
        "id,account_id,email,name,title,tier\n"
        "C1,A1,ann@alpha.com,Ann,VP Sales,Executive\n"
        "C2,A1,bob@alpha.com,Bob,VP Sales,Executive\n",
    )
    first, second = read_contacts(path, {"A1"}, written={"C2": {"nps": "12.5"}})
    assert first.account_id is second.account_id
    assert first.title is second.title
    assert first.crm_tier is second.crm_tier
    assert first.crm_values is NO_VALUES
    assert second.crm_values == {"nps": "12.5"}
    other = write(tmp_path, "more.csv", "id,account_id,email\nC9,A1,ann@alpha.com\n")
    assert read_contacts(other, {"A1"}, share_emails=True)[0].email is sys.intern(
        "".join(["ann@", "alpha.com"])
    )


def test_an_account_without_written_values_holds_the_shared_empty_mapping(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "accounts.csv", "id,name,revenue\nA1,Alpha,\n")
    assert read_accounts(path)[0].crm_values is NO_VALUES


def test_written_figures_that_repeat_are_one_shared_string(tmp_path: Path) -> None:
    path = write(tmp_path, "ax_contacts.csv", "id,nps_category\nC1,promoter\nC2,promoter\n")
    written = read_written(path)
    assert written["C1"]["nps_category"] is written["C2"]["nps_category"]


def test_shared_text_shares_short_text_only() -> None:
    short = "".join(["Exec", "utive"])  # built at run time: not a shared constant
    assert shared_text(short) is shared_text("".join(["Execu", "tive"]))
    long_text = "x" * (SHARED_LENGTH + 1)
    assert shared_text(long_text) is long_text

    class Text(str):
        __slots__ = ()

    subclassed = Text("Executive")
    assert shared_text(subclassed) is subclassed  # a subclass cannot be interned
    assert shared_text(5) == 5
    assert shared_text(None) is None
