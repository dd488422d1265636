"""Policy files: each example loads, and bad files name the file, the field and the expectation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amp_tools.errors import ConfigError
from amp_tools.money import Money
from amp_tools.policy import check_policy_file, load_policy, parse_policy, policy_json_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def sgd(text: str) -> Money:
    return Money.parse(text, "SGD")


def _usd(text: str) -> Money:
    return Money.parse(text, "USD")


def test_cautious_traveller_yaml() -> None:
    policy = load_policy(EXAMPLES / "cautious_traveller.yaml")
    assert policy.currency == "USD"
    assert policy.total_budget == _usd("1500.00")
    assert policy.per_transaction_max == _usd("400.00")
    assert policy.windows.day is not None and policy.windows.day.limit == _usd("300.00")
    assert policy.windows.day.mode == "calendar"
    assert policy.windows.week is not None and policy.windows.week.mode == "rolling"
    assert policy.timezone == "America/New_York"
    assert policy.approval.confirm_above == _usd("100.00")
    assert policy.approval.confirm_new_merchants and policy.approval.confirm_human_present
    assert policy.mccs.deny == ["7995", "4829"]
    assert policy.velocity is not None and policy.velocity.max_payments == 5
    assert policy.expires_at == datetime(2028, 1, 1, 4, 59, 59, tzinfo=UTC)


def test_company_travel_desk_toml() -> None:
    policy = load_policy(EXAMPLES / "company_travel_desk.toml")
    assert policy.currency == "SGD"
    assert policy.merchants.allow == ["SKYLARK-AIR", "MARINA-HOTEL", "KL-GRAND-HOTEL", "ZOOM-CARS"]
    assert policy.merchants.caps == {"SKYLARK-AIR": sgd("25000"), "MARINA-HOTEL": sgd("12000"),
                                     "KL-GRAND-HOTEL": sgd("8000"), "ZOOM-CARS": sgd("3000")}
    assert policy.mccs.allow == ["3000-3299", "7011", "7512"]
    assert policy.mccs.caps == {"7512": sgd("3000")}
    assert policy.windows.week is not None and policy.windows.week.limit == sgd("12000")
    assert policy.windows.month is not None and policy.windows.month.limit == sgd("30000")
    assert policy.velocity is not None and (policy.velocity.max_payments, policy.velocity.per) == (6, "1d")
    assert policy.approval.confirm_refunds is True
    assert policy.negotiation.max_offer == sgd("4500")


def test_delegated_small_budget_json() -> None:
    policy = load_policy(EXAMPLES / "delegated_small_budget.json")
    assert policy.total_budget == _usd("200.00")
    assert policy.approval.confirm_above == _usd("50.00")
    assert not policy.approval.confirm_new_merchants
    assert policy.windows.day is not None and policy.windows.day.mode == "rolling"


def test_check_policy_file_summary() -> None:
    text = check_policy_file(EXAMPLES / "delegated_small_budget.json")
    assert text.startswith(f"{EXAMPLES / 'delegated_small_budget.json'}: OK")
    assert "total budget 200.00 USD" in text and "day cap 100.00 USD (rolling)" in text


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problem_lines(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    lines = exc.value.message.splitlines()
    return lines if exc.value.details.get("problems") == 1 else lines[1:]  # several: a count line first


def test_yaml_float_amount_is_refused_with_quote_advice(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.yaml", "currency: USD\ntotal_budget: 500\nwindows:\n  day:\n    limit: 12.5\n")
    with pytest.raises(ConfigError) as exc:
        load_policy(path)
    (line,) = _problem_lines(exc)
    assert line.startswith(f"{path}: windows.day.limit: ")
    assert "12.5" in line and "float" in line and 'quote it as a decimal string such as "12.5"' in line


def test_toml_and_json_float_amounts_are_refused(tmp_path: Path) -> None:
    toml = _write(tmp_path, "p.toml", 'currency = "USD"\ntotal_budget = 99.99\n')
    with pytest.raises(ConfigError, match=r"p\.toml: total_budget: amount 99\.99 is written as a float"):
        load_policy(toml)
    js = _write(tmp_path, "p.json", json.dumps({"currency": "USD", "total_budget": "10",
                                                 "per_transaction_max": 2.5}))
    with pytest.raises(ConfigError, match=r"p\.json: per_transaction_max: amount 2\.5 is written as a float"):
        load_policy(js)


def test_unknown_field_is_named_with_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.yaml", "currency: USD\ntotal_budget: '10'\nmerchants:\n  alow: [A]\n")
    with pytest.raises(ConfigError) as exc:
        load_policy(path)
    (line,) = _problem_lines(exc)
    assert line.startswith(f"{path}: merchants.alow: unknown field 'alow' (did you mean 'allow'?)")
    assert "expected one of: allow, caps, deny" in line


def test_bad_currency(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.json", json.dumps({"currency": "USX", "total_budget": "10"}))
    with pytest.raises(ConfigError) as exc:
        load_policy(path)
    (line,) = _problem_lines(exc)
    assert line.startswith(f"{path}: currency: currency 'USX' is not an ISO 4217 currency")


def test_wrong_extension(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.ini", "currency=USD")
    with pytest.raises(ConfigError, match=r"p\.ini: unknown policy file extension '\.ini'; expected \.yaml"):
        load_policy(path)


@pytest.mark.parametrize(("field_yaml", "path_text", "fragment"), [
    ("windows:\n  week:\n    limit: '-5'\n", "windows.week.limit", "negative"),
    ("merchants:\n  caps:\n    SKY: '0'\n", "merchants.caps.SKY", "zero"),
    ("per_transaction_max: '0.001'\n", "per_transaction_max", "more decimals than USD allows"),
    ("velocity:\n  max_payments: 0\n  per: 1h\n", "velocity.max_payments", "greater than or equal to 1"),
    ("velocity:\n  max_payments: 3\n  per: soon\n", "velocity.per", "duration 'soon' is not understood"),
    ("mccs:\n  allow: ['3299-3000']\n", "mccs.allow", "runs backwards"),
    ("timezone: Mars/Base\n", "timezone", "not an IANA timezone"),
    ("expires_at: '2030-01-01T00:00:00'\n", "expires_at", "has no UTC offset"),
    ("per_transaction_max: '600'\n", "per_transaction_max", "is above total_budget 500.00 USD"),
    ("windows:\n  day:\n    limit: '5'\n    mode: weekly\n", "windows.day.mode", "'calendar' or 'rolling'"),
    ("approval:\n  confirm_all: maybe\n", "approval.confirm_all", "expected true or false"),
])
def test_bad_fields_name_the_path(tmp_path: Path, field_yaml: str, path_text: str, fragment: str) -> None:
    path = _write(tmp_path, "bad.yaml", "currency: USD\ntotal_budget: '500'\n" + field_yaml)
    with pytest.raises(ConfigError) as exc:
        load_policy(path)
    (line,) = _problem_lines(exc)
    assert line.startswith(f"{path}: {path_text}: ")
    assert fragment in line


def test_every_problem_gets_its_own_line() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_policy({"currency": "USD", "total_budget": 1.5, "foo": 1, "windows": {"day": {"limit": "x"}}},
                     source="inline.yaml")
    lines = exc.value.message.splitlines()
    assert lines[0] == "inline.yaml: policy has 3 problems:"
    assert sorted(line.split(": ")[1] for line in lines[1:]) == ["foo", "total_budget", "windows.day.limit"]
    assert exc.value.details["problems"] == 3


def test_missing_fields_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_policy({}, source="x.json")
    assert exc.value.message.splitlines()[1:] == ["x.json: currency: required field is missing",
                                                  "x.json: total_budget: required field is missing"]
    empty = _write(tmp_path, "empty.yaml", "")
    with pytest.raises(ConfigError, match="the policy is empty"):
        load_policy(empty)


def test_syntax_errors_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML at line 2"):
        load_policy(_write(tmp_path, "bad.yaml", "currency: USD\n  total_budget: [\n"))
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON at line 1"):
        load_policy(_write(tmp_path, "bad.json", "{"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policy(_write(tmp_path, "bad.toml", "currency = "))
    with pytest.raises(ConfigError, match="policy file not found"):
        load_policy(tmp_path / "absent.yaml")


def test_amount_normalisation_and_mcc_ints() -> None:
    policy = parse_policy({"currency": "jpy", "total_budget": 5000, "mccs": {"allow": [742, "3000 - 3299"],
                                                                          "caps": {7011: "1000"}}})
    assert policy.currency == "JPY"
    assert policy.total_budget == Money(5000, "JPY")
    assert policy.mccs.allow == ["0742", "3000-3299"]
    assert policy.mccs.caps == {"7011": Money(1000, "JPY")}
    with pytest.raises(ConfigError, match="more decimals than JPY allows"):
        parse_policy({"currency": "JPY", "total_budget": "10.5"})


def test_deny_and_allow_may_name_the_same_merchant() -> None:
    policy = parse_policy({"currency": "USD", "total_budget": "10",
                           "merchants": {"allow": ["Shop"], "deny": ["shop"]}})
    assert policy.is_denied_merchant("S-1", "SHOP") == "shop"


def test_snapshot_hash_is_stable_and_sensitive() -> None:
    base = {"currency": "USD", "total_budget": "100", "windows": {"day": {"limit": "50"}}}
    a = parse_policy(base)
    b = parse_policy({"windows": {"day": {"limit": "50.00", "mode": "calendar"}}, "total_budget": 100,
                      "currency": "usd"})
    assert a.snapshot_hash() == b.snapshot_hash()
    assert len(a.snapshot_hash()) == 64
    c = parse_policy({**base, "total_budget": "100.01"})
    assert c.snapshot_hash() != a.snapshot_hash()
    # A policy survives a dump/load round trip unchanged.
    assert parse_policy(a.model_dump(mode="json", by_alias=True)).snapshot_hash() == a.snapshot_hash()


def test_json_schema_describes_every_field_and_amounts_as_strings() -> None:
    schema = policy_json_schema()
    props = schema["properties"]
    assert {"currency", "total_budget", "windows", "merchants", "mccs", "velocity", "expires_at",
            "approval", "negotiation", "timezone"} <= set(props)
    assert schema["additionalProperties"] is False
    for name, prop in props.items():
        assert prop.get("description"), name
    for model in schema["$defs"].values():
        for name, prop in model["properties"].items():
            assert prop.get("description"), name
    amount = props["total_budget"]["anyOf"][0]
    assert amount["type"] == "string" and "pattern" in amount


@pytest.mark.parametrize(("suffix", "text", "key", "where"), [
    (".yaml", 'currency: USD\ntotal_budget: "10.00"\ntotal_budget: "1000000.00"\n', "total_budget",
     " (line 3, column 1)"),
    (".json", '{"currency": "USD", "total_budget": "10.00", "total_budget": "1000000.00"}', "total_budget",
     " (line 1, column 46)"),
    (".yaml", 'currency: USD\ntotal_budget: "10.00"\nwindows:\n  day: {limit: "1.00"}\n  day: {limit: "9.00"}\n',
     "day", " (line 5, column 3)"),
    (".json", '{"currency": "USD", "total_budget": "10.00", "windows": {"day": {"limit": "1.00", "limit": "9.00"}}}',
     "limit", " (line 1, column 83)"),
    (".json", '{\n  "currency": "USD",\n  "total_budget": "10.00",\n  "currency": "EUR"\n}', "currency",
     " (line 4, column 3)"),
    (".toml", 'currency = "USD"\ntotal_budget = "10.00"\ntotal_budget = "1000000.00"\n', "total_budget",
     " (line 3, column 1)"),
    (".toml", 'currency = "USD"\ntotal_budget = "10.00"\n[windows.day]\nlimit = "1.00"\n  limit = "9.00"\n', "limit",
     " (line 5, column 3)"),
    (".toml", 'currency = "USD"\ntotal_budget = "10.00"\n[windows]\n[windows]\n', "windows", " (line 4, column 1)"),
])
def test_a_key_written_twice_is_an_error_naming_the_key(suffix: str, text: str, key: str, where: str,
                                                         tmp_path: Path) -> None:
    path = tmp_path / f"twice{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    assert err.value.message == f"{path}: the key {key!r} appears twice{where}; keep one of them"
