"""Rule files cost bounded work: hostile YAML is refused with a position, quickly.

A "billion laughs" file, a duration that overflows, a cyclic alias, a huge or deeply
nested file: each ends as a ``file:line:col`` error, never a traceback or a stall.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.rules.loader import RuleLoadError, load_rules
from agent.rules.yamlpos import MAX_BYTES, MAX_DEPTH

CHANNELS = {"cx-alerts", "cx-leadership"}
ONE_RULE = (
    "rules:\n  - id: at-risk\n    scope: account\n    when: account.at_risk\n"
    "    notify: {channel: cx-alerts}\n"
)


def _laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n" + ONE_RULE


def _refused(folder: Path, text: str) -> list[str]:
    (folder / "rules.yaml").write_text(text, encoding="utf-8")
    # CPU time of this process, not wall time: the bound is on the work a file can cause,
    # and a machine busy with other processes must not fail it (an unbounded billion
    # laughs takes minutes of CPU).
    start = time.process_time()
    with pytest.raises(RuleLoadError) as info:
        load_rules(folder, channels=CHANNELS, routes={})
    assert time.process_time() - start < 1.0
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize("levels", [7, 9])
def test_billion_laughs_is_refused_at_the_alias_within_a_second(
    tmp_path: Path, levels: int
) -> None:
    errors = _refused(tmp_path, _laughs(levels))
    assert len(errors) == 1
    # line 5 (level 4, 7,381 values per alias) is where the running count passes 50,000
    assert errors[0].startswith(f"{tmp_path / 'rules.yaml'}:5:35: aliases expand to more than")


def test_an_overflowing_duration_names_the_allowed_range(tmp_path: Path) -> None:
    text = ONE_RULE + "    realert: 99999999999999d\n"
    assert _refused(tmp_path, text) == [
        f"{tmp_path / 'rules.yaml'}:6:14: realert: '99999999999999d' is out of range; "
        "a duration is from 1s to 3660d (ten years)"
    ]
    huge = ONE_RULE + "    realert: " + "9" * 5000 + "s\n"
    (error,) = _refused(tmp_path, huge)
    assert ":6:14: realert: '99999" in error
    assert "out of range" in error
    assert len(error) < 200


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    (error,) = _refused(tmp_path, "x: &a [1, *a]\n" + ONE_RULE)
    assert error.endswith(":1:11: alias *a refers to the anchor that contains it")


def test_a_file_over_the_size_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    text = ONE_RULE + "# " + "x" * MAX_BYTES + "\n"
    (error,) = _refused(tmp_path, text)
    assert error.endswith(
        ":1:1: the file is larger than 256 KB; split the rules into several files"
    )


def test_deep_nesting_is_refused_with_its_position(tmp_path: Path) -> None:
    (error,) = _refused(tmp_path, "x: " + "[" * 1_000 + "\n")
    assert error.endswith(f":1:{MAX_DEPTH + 3}: nested more than {MAX_DEPTH} levels deep")


def test_plain_aliases_still_work(tmp_path: Path) -> None:
    text = (
        "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n"
        "    notify: &cx {channel: cx-alerts}\n"
        "  - id: b\n    scope: account\n    when: account.tier_misaligned\n    notify: *cx\n"
    )
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    rules = load_rules(tmp_path, channels=CHANNELS, routes={})
    assert [r.rule.notify.channel for r in rules.rules] == ["cx-alerts", "cx-alerts"]


# ---- fuzz: whatever the text, the loader loads it or refuses it with a position ----

_FRAGMENTS = st.sampled_from(
    [
        "rules:",
        "  - id: a",
        "  - id: b",
        "    scope: account",
        "    scope: response",
        "    scope: portfolio",
        "    when: account.at_risk",
        "    when: response.score <= 6",
        "    when: account.nps < ",
        "    when: (((((",
        "    realert: 7d",
        "    realert: 99999999999999d",
        "    realert: -1d",
        "    max_age: 2d",
        "    notify: {channel: cx-alerts}",
        "    notify: {channel: nope}",
        "    notify: &n {owner: true}",
        "    notify: *n",
        "    inhibits: [b]",
        "    inhibits: [zz]",
        "    message: '{account.name}'",
        "    message: '{'",
        "    escalate: {after: 48h, to: cx-leadership}",
        "x: &a [1, 2, 3]",
        "y: &b [*a, *a, *a, *a]",
        "z: [*b, *b, *b, *b, *b]",
        "- [[[[",
        "? [a]\n  : b",
        "  <<: *a",
        "\t",
        "'",
        '"\\ud800"',
        "!!python/object:os.system []",
        "rules: &r [*r]",
        "---",
        "...",
        "%YAML 1.1",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(st.one_of(_FRAGMENTS, st.text(max_size=40)), max_size=30),
)
def test_fuzzed_rule_files_are_loaded_or_refused_with_a_position(
    tmp_path: Path, lines: list[str]
) -> None:
    file = tmp_path / "rules.yaml"
    file.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    start = time.process_time()  # the work done, whatever else the machine runs
    errors = []
    try:
        load_rules(tmp_path, channels=CHANNELS, routes={})
    except RuleLoadError as exc:
        errors = exc.errors
        assert errors, "a refusal names at least one error"
    assert time.process_time() - start < 2.0
    for error in errors:
        assert str(error).startswith(f"{file}:")
        assert error.line >= 1
        assert error.column >= 1
        assert error.message
