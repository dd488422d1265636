"""Policy files cannot exhaust the machine, and what they say is printed safely and completely.

YAML aliases are measured before anything is built (billion laughs, alias bombs through nested
`agents:`, self-reference); the messages name the limit and never the expanded value. `policy check`
builds each sub-budget's effective policy once (counted, not timed). Names with control characters
are refused. The OK line says every rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amp_tools.errors import ConfigError
from amp_tools.policy import load_policy, parse_policy, subbudgets
from amp_tools.policy._unique import MAX_ALIASES, MAX_NODES
from amp_tools.policy.loader import check_policy_file

LAUGHS = "".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
    *(f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
])


def _refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    return err.value.message


def test_billion_laughs_is_refused_naming_the_limit(tmp_path: Path) -> None:
    message = _refused(tmp_path, LAUGHS)
    assert f"more than {MAX_NODES:,} nodes (the limit)" in message
    assert "lol" not in message and len(message) < 300


def test_an_alias_bomb_through_nested_agents_is_refused(tmp_path: Path) -> None:
    lines = ['currency: USD\ntotal_budget: "10.00"\nx0: &x0 {total_budget: "1.00"}\n']
    for level in range(1, 25):
        prev = f"x{level - 1}"
        lines.append(f'x{level}: &x{level} {{total_budget: "1.00", agents: {{p: *{prev}, q: *{prev}}}}}\n')
    lines.append("agents: {crew: *x24}\n")
    message = _refused(tmp_path, "".join(lines))
    assert f"more than {MAX_NODES:,} nodes (the limit)" in message and len(message) < 300


def test_too_many_aliases_and_self_reference_are_refused(tmp_path: Path) -> None:
    many = 'currency: USD\ntotal_budget: &t "10.00"\ndescription: [' + ", ".join(["*t"] * (MAX_ALIASES + 1)) + "]\n"
    assert f"more than {MAX_ALIASES} aliases (the limit)" in _refused(tmp_path, many)
    assert "refers to a value that contains it (line 3" in _refused(
        tmp_path, 'currency: USD\ntotal_budget: "1.00"\nagents: &a {x: *a}\n')
    # A few honest aliases still load.
    fine = tmp_path / "fine.yaml"
    fine.write_text('currency: USD\ntotal_budget: "100.00"\nagents:\n  a: &agent {total_budget: "10.00"}\n'
                    '  b: *agent\n')
    assert set(load_policy(fine).agents) == {"a", "b"}


def test_policy_check_builds_each_sub_budget_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agents = {f"agent{i:03d}": {"total_budget": "1.00"} for i in range(668)}
    path = tmp_path / "crew.json"
    path.write_text(json.dumps({"name": "crew", "currency": "USD", "total_budget": "1000.00", "agents": agents}))
    calls: list[str] = []
    real = subbudgets.effective_policy

    def counting(parent: object, name: str, child: object) -> object:
        calls.append(name)
        return real(parent, name, child)  # type: ignore[arg-type]

    monkeypatch.setattr(subbudgets, "effective_policy", counting)
    text = check_policy_file(path)
    assert "agent667 1.00 USD" in text
    # Linear (validation once, the summary once); it was 448,228 (every path rebuilt the whole tree).
    assert len(calls) <= 3 * 668
    loaded = load_policy(path)
    calls.clear()
    path_of_one = subbudgets.BudgetPath.of(loaded, "crew", "agent500")
    assert len(path_of_one.levels[0].covers) == 669 and len(calls) == 1  # covers need names, not policies


@pytest.mark.parametrize("name", ["Trip\x1b[31mPAID", "Trip\u202eevil", "Trip\x00", "Trip\nline two"])
def test_a_policy_name_with_control_characters_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="control or format character U\\+"):
        parse_policy({"name": name, "currency": "USD", "total_budget": "1.00"})
    with pytest.raises(ConfigError, match="agent name"):
        parse_policy({"currency": "USD", "total_budget": "1.00", "agents": {name: {}}})


def test_the_ok_line_says_every_rule(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('name: Trip\ncurrency: USD\ntotal_budget: "1000.00"\nper_transaction_max: "300.00"\n'
                    'windows: {day: {limit: "500.00"}}\nvelocity: {max_payments: 5, per: 1h}\n'
                    'merchants: {allow: [SKYLARK, MARINA], deny: [SHADY], caps: {SKYLARK: "400.00"}}\n'
                    'mccs: {deny: ["7995"]}\napproval: {confirm_above: "100.00", confirm_refunds: true}\n'
                    'negotiation: {max_rounds: 2}\n')
    text = check_policy_file(path)
    for part in ("total budget 1000.00 USD", "per payment at most 300.00 USD", "day cap 500.00 USD",
                 "at most 5 payments per 1h", "only merchants SKYLARK, MARINA", "never merchants SHADY",
                 "caps per merchant SKYLARK 400.00 USD", "never MCCs 7995",
                 "a person approves above 100.00 USD or for refunds", "negotiation: at most 2 rounds"):
        assert part in text, part
    bare = tmp_path / "bare.yaml"
    bare.write_text('currency: USD\ntotal_budget: "10.00"\n')
    assert "any merchants; any MCCs; no person is asked (no approval rule)" in check_policy_file(bare)


def test_a_merchant_directory_file_is_parsed_as_safely(tmp_path: Path) -> None:
    from amp_tools.toolkit.directory import MerchantDirectory

    path = tmp_path / "merchants.yaml"
    path.write_text(LAUGHS)
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES:,} nodes"):
        MerchantDirectory.load(path)
