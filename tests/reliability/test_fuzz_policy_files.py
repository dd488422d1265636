"""Malformed policy files: generated structures and mutations of the example files.

`load_policy` must return a `BudgetPolicy` or raise `ConfigError` whose message names the
file, and for a schema problem the field; nothing else may escape (no RecursionError,
TypeError, yaml or toml internals).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amp_tools.errors import ConfigError
from amp_tools.policy import BudgetPolicy, load_policy

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "policies").iterdir())
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=100, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
KEYS = ["currency", "total_budget", "per_transaction_max", "windows", "day", "week", "limit", "mode", "mccs",
        "allow", "deny", "merchants", "caps", "velocity", "max_payments", "per", "approval", "confirm_above",
        "confirm_refunds", "negotiation", "max_rounds", "expires_at", "timezone", "name", "version"]
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=True),
                   st.text(max_size=12), st.sampled_from(["USD", "1e5", "-1.00", "NaN", "12.345", "2099-01-01", "1h"]))
tree = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
                    max_leaves=12)


def _check(path: Path) -> BudgetPolicy | None:
    try:
        return load_policy(path)
    except ConfigError as exc:
        text = str(exc)
        assert str(path) in text, text[:300]
        assert "Traceback" not in text and len(text) < 20_000
        if "problem" in text.splitlines()[0]:
            # one line per problem: "<file>: <field.path>: <what>"
            assert all(re.match(rf"{re.escape(str(path))}: \S", line) for line in text.splitlines()[1:]), text
        return None


def _write(folder: Path, name: str, data: Any) -> Path | None:
    path = folder / name
    if name.endswith(".json"):
        path.write_text(json.dumps(data))
    elif name.endswith(".yaml"):
        path.write_text(yaml.safe_dump(data))
    else:
        lines = [f"{k} = {json.dumps(v)}" for k, v in (data.items() if isinstance(data, dict) else [])
                 if isinstance(v, (str, int, bool)) or (isinstance(v, list) and all(isinstance(x, str) for x in v))]
        path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("ext", [".json", ".yaml", ".toml"])
def test_generated_structures_load_or_raise_config_error(ext: str, tmp_path: Path) -> None:
    counts = {"ok": 0, "refused": 0}

    @FUZZ
    @given(data=st.one_of(tree, st.dictionaries(st.sampled_from(KEYS), tree, min_size=1, max_size=8)))
    def check(data: Any) -> None:
        path = _write(tmp_path, "policy" + ext, data)
        assert path is not None
        counts["ok" if _check(path) is not None else "refused"] += 1

    check()
    assert counts["refused"] >= 90, counts


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_mutated_example_files_load_or_raise_config_error(example: Path, tmp_path: Path) -> None:
    original = example.read_bytes()
    assert isinstance(load_policy(example), BudgetPolicy)
    counts = {"ok": 0, "refused": 0}

    @FUZZ
    @given(edits=st.lists(st.tuples(st.sampled_from(["delete", "insert", "replace", "truncate"]),
                                    st.integers(0, len(original)), st.binary(min_size=1, max_size=4)),
                          min_size=1, max_size=3))
    def check(edits: list[tuple[str, int, bytes]]) -> None:
        body = bytearray(original)
        for op, at, blob in edits:
            at = min(at, len(body))
            if op == "delete":
                del body[at:at + len(blob)]
            elif op == "insert":
                body[at:at] = blob
            elif op == "replace":
                body[at:at + len(blob)] = blob
            else:
                del body[at:]
        path = tmp_path / example.name
        path.write_bytes(bytes(body))
        counts["ok" if _check(path) is not None else "refused"] += 1

    check()
    assert counts["refused"] > 20, counts


@pytest.mark.parametrize(("name", "body"), [
    ("deep.json", "[" * 50_000 + "]" * 50_000),
    ("deep.yaml", "a: " + "[" * 5_000 + "]" * 5_000),
    ("deep.toml", "a = " + "[" * 5_000 + "]" * 5_000),
    ("bom.json", "\ufeff{}"),
    ("nul.yaml", "currency: USD\x00"),
    ("tags.yaml", "currency: !!python/object:os.system ls"),
    ("anchors.yaml", "a: &a [1]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\ncurrency: USD\ntotal_budget: 1"),
    ("nan.json", '{"currency": "USD", "total_budget": NaN}'),
    ("number.json", '{"currency": "USD", "total_budget": 100.5}'),
    ("dupe.toml", 'currency = "USD"\ncurrency = "EUR"'),
    ("keys.yaml", "1: 2\n? [a, b]\n: c\n"),
])
def test_hostile_files_raise_config_error_naming_the_file(name: str, body: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_policy(path)
    assert str(path) in str(refused.value)
