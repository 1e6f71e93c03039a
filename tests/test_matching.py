"""Matching a response to a contact and account, in DOMAIN.md's four steps."""

from __future__ import annotations

import pytest

from agent.core.contract import DEFAULT_FREE_MAIL
from agent.core.matching import (
    Match,
    Matcher,
    email_domain,
    normalise_domain,
    normalise_domains,
    normalise_email,
)
from tests.core_builders import account, contact


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme.com", "acme.com"),
        (" ACME.com\t", "acme.com"),
        ("https://www.Acme.com/about", "acme.com"),
        ("http://acme.com?x=1", "acme.com"),
        ("acme.com#top", "acme.com"),
        ("acme.com/a/b", "acme.com"),
        ("www.acme.com", "acme.com"),
        ("www.www.acme.com", "www.acme.com"),
        ("WWW.shared.example", "shared.example"),
        ("ftp://files.acme.com", "files.acme.com"),
        ("eu.acme.com", "eu.acme.com"),
        ("wwwacme.com", "wwwacme.com"),
        ("", ""),
    ],
)
def test_normalise_domain(raw: str, expected: str) -> None:
    assert normalise_domain(raw) == expected


def test_normalise_domains_splits_dedupes_and_drops_empty() -> None:
    assert normalise_domains("https://www.Alpha.com/about;alpha.de; ;ALPHA.com") == (
        "alpha.com",
        "alpha.de",
    )
    assert normalise_domains(("a.com;b.com", "www.a.com")) == ("a.com", "b.com")


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        (" Ann@Alpha.COM ", "alpha.com"),
        ("a@b@eu.acme.com", "eu.acme.com"),
        ("a@www.acme.com", "www.acme.com"),
        ("no-at-sign", ""),
        ("", ""),
        (None, ""),
        ("x@", ""),
    ],
)
def test_email_domain(email: str | None, domain: str) -> None:
    assert email_domain(email) == domain


def test_normalise_email() -> None:
    assert normalise_email(" \tAnn@Alpha.COM ") == "ann@alpha.com"
    assert normalise_email(None) == ""


ACCOUNTS = [
    account("A1", domains=("https://www.alpha.com/x", "alpha.de", "gmail.com")),
    account("A2", domains=("beta.io; shared.example",)),
    account("A3", domains=("www.shared.example", "gamma.ch", "gamma.ch")),
    account("a1", domains=("lower.example",)),
]
CONTACTS = [
    contact("C1", "A1", " Ann@Alpha.com "),
    contact("C2", "A2", "ann@alpha.com"),  # same email, later: never matches
    contact("C3", "A2", "fred@beta.io"),
    contact("C4", "NOPE", "ghost@beta.io"),  # names no account
    contact("C5", "A1", None),
]


@pytest.fixture
def matcher() -> Matcher:
    return Matcher(ACCOUNTS, CONTACTS, DEFAULT_FREE_MAIL)


def test_step1_email_of_a_contact(matcher: Matcher) -> None:
    assert matcher.match("ANN@alpha.com\t", None) == Match("A1", 0, None)
    assert matcher.match("fred@BETA.io", "A3") == Match("A2", 2, None)


def test_first_contact_wins_a_shared_email(matcher: Matcher) -> None:
    assert matcher.match("ann@alpha.com", None).contact == 0


def test_contact_of_an_unknown_account_never_matches(matcher: Matcher) -> None:
    assert matcher.match("ghost@beta.io", None) == Match("A2", None, None)


def test_a_shared_email_goes_to_the_first_contact_of_a_known_account() -> None:
    contacts = [
        contact("C1", "NOPE", "kim@beta.io"),  # names no account: not in the index
        contact("C2", "A2", " KIM@beta.io"),
        contact("C3", "A3", "kim@beta.io"),
    ]
    matcher = Matcher(ACCOUNTS, contacts, DEFAULT_FREE_MAIL)
    assert matcher.match("kim@beta.io", None) == Match("A2", 1, None)


def test_step2_hint_is_trimmed_and_case_sensitive(matcher: Matcher) -> None:
    assert matcher.match("anon@gmail.com", " A3 ") == Match("A3", None, None)
    assert matcher.match(None, "A2") == Match("A2", None, None)
    assert matcher.match(None, "a1") == Match("a1", None, None)
    assert matcher.match("x@nowhere.example", "a2") == Match(None, None, "no_match")


def test_unknown_hint_falls_through_to_the_domain(matcher: Matcher) -> None:
    assert matcher.match("zed@alpha.de", "NOPE") == Match("A1", None, None)
    assert matcher.match("k@hotmail.com", "NOPE") == Match(None, None, "free_mail_domain")


def test_step3_domain_of_exactly_one_account(matcher: Matcher) -> None:
    assert matcher.match("Zed@ALPHA.com", None) == Match("A1", None, None)
    assert matcher.match("x@gamma.ch", None) == Match("A3", None, None)


def test_no_subdomain_matching(matcher: Matcher) -> None:
    assert matcher.match("sub@eu.alpha.com", None) == Match(None, None, "no_match")
    assert matcher.match("x@www.alpha.com", None) == Match(None, None, "no_match")


def test_ambiguous_domain(matcher: Matcher) -> None:
    assert matcher.match("x@shared.example", None) == Match(None, None, "ambiguous_domain")


def test_a_domain_listed_twice_by_one_account_is_not_ambiguous(matcher: Matcher) -> None:
    assert matcher.match("x@gamma.ch", None).account_id == "A3"


def test_free_mail_wins_even_when_an_account_lists_it(matcher: Matcher) -> None:
    assert matcher.match("y@gmail.com", None) == Match(None, None, "free_mail_domain")


def test_free_mail_before_ambiguous() -> None:
    accounts = [account("A", domains=("gmx.de",)), account("B", domains=("gmx.de",))]
    assert Matcher(accounts, [], DEFAULT_FREE_MAIL).match("x@gmx.de", None).reason == (
        "free_mail_domain"
    )


@pytest.mark.parametrize("email", [None, "", "  ", "no-at-sign", "x@", "x@nowhere.example"])
def test_no_match(matcher: Matcher, email: str | None) -> None:
    assert matcher.match(email, None) == Match(None, None, "no_match")


def test_free_mail_list_comes_from_config() -> None:
    accounts = [account("A", domains=("gmail.com",)), account("B", domains=("corp.example",))]
    own = Matcher(accounts, [], [" Corp.Example "])
    assert own.match("x@gmail.com", None) == Match("A", None, None)
    assert own.match("x@corp.example", None).reason == "free_mail_domain"


@pytest.mark.parametrize(
    "domain",
    [
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "yahoo.com",
        "icloud.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "proton.me",
        "protonmail.com",
    ],
)
def test_default_free_mail_list(domain: str) -> None:
    assert domain in DEFAULT_FREE_MAIL


def test_an_email_already_normal_is_the_contacts_own_string() -> None:
    # Half a million contacts: the email index keeps the contact's string when
    # normalising leaves it as it is, instead of a lowercased copy of each.
    email = "".join(["ann@", "alpha.com"])
    mixed = "Bob@Alpha.com"
    matcher = Matcher([account("A1")], [contact("C1", "A1", email), contact("C2", "A1", mixed)], [])
    keys = {key: key for key in matcher._by_email}
    assert keys[email] is email
    assert keys["bob@alpha.com"] == "bob@alpha.com"
    assert matcher.match("ANN@alpha.com ", None).contact == 0
