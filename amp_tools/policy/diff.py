"""The canonical form of a stored policy and a readable diff between two policies.

A policy is stored in the ledger as the canonical JSON of its parsed model (`BudgetPolicy.canonical_json`:
sorted keys, compact separators, amounts as decimal strings), so two files that parse to the same policy
(other key order, comments, ``5`` vs ``"5.00"``) store and hash the same. `diff_json` compares two such
documents field by field and names each change by its path (``windows.day.limit: 90.00 -> 120.00``),
which is what the owner confirms, the audit records and a refused agent prints.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_text", "diff_json", "diff_policies", "policy_hash"]

_MAX_SHOWN = 80  # a value longer than this is shortened in a diff line (the full text is in the policy)


def canonical_text(policy: Any) -> str:
    """The canonical JSON text of a parsed policy (anything with `canonical_json()`)."""
    text: str = policy.canonical_json()
    return text


def policy_hash(text: str) -> str:
    """sha256 hex of a canonical policy text (equal to the policy's `snapshot_hash()`)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _walk(path: str, old: Any, new: Any, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            here = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{here}: (not set) -> {_shown(new[key])}")
            elif key not in new:
                out.append(f"{here}: {_shown(old[key])} -> (not set)")
            else:
                _walk(here, old[key], new[key], out)
        return
    if old != new:
        out.append(f"{path or '(policy)'}: {_shown(old)} -> {_shown(new)}")


def _set_fields(path: str, value: Any, out: list[str]) -> None:
    """The fields a first version sets, one line per leaf, leaving out what is unset (null, empty)."""
    if isinstance(value, dict):
        for key in sorted(value):
            _set_fields(f"{path}.{key}" if path else str(key), value[key], out)
    elif value is not None and value != [] and value != {} and value is not False:
        out.append(f"{path}: (not set) -> {_shown(value)}")


def diff_json(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """One line per changed field, ``path: old -> new``, in path order; empty when equal. With no old
    policy (a first version), one line per field the new one sets."""
    out: list[str] = []
    if old is None:
        _set_fields("", new, out)
    else:
        _walk("", old, new, out)
    return out


def diff_policies(old: Any, new: Any) -> list[str]:
    """`diff_json` of two parsed policies (or canonical texts)."""
    def load(value: Any) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(value if isinstance(value, str) else canonical_text(value))
        return data

    return diff_json(load(old) if old is not None else None, load(new))
