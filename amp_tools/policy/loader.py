"""Reading policy files: YAML, TOML or JSON by extension, with errors a person can act on.

Owns turning a file or a dict into a `BudgetPolicy`, and turning pydantic's validation
errors into one `ConfigError` whose message has one line per problem, each naming the file,
the field path (``windows.day.limit``) and what is expected.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path
from typing import Any, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from amp_tools.errors import ConfigError
from amp_tools.policy._unique import DuplicateKey, ExpansionLimit, json_loads, toml_loads, yaml_load
from amp_tools.policy.model import BudgetPolicy

__all__ = ["SUFFIXES", "check_policy_file", "load_policy", "parse_policy", "policy_json_schema"]

#: File extensions and the format each selects.
SUFFIXES: dict[str, str] = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}


def _read(path: Path) -> Any:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"{path}: unknown policy file extension {path.suffix or '(none)'!r}; "
                          "expected .yaml, .yml, .toml or .json")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: policy file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read policy file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: policy file is not UTF-8 text") from None
    try:
        if kind == "yaml":
            return yaml_load(text)
        if kind == "toml":
            return toml_loads(text)
        return json_loads(text)
    except DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except ExpansionLimit as exc:
        raise ConfigError(f"{path}: refused: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        # All three parsers recurse per nesting level; a hostile file must not crash the caller.
        raise ConfigError(f"{path}: the {kind.upper()} is nested too deeply to be a policy") from None


def load_policy(path: str | Path) -> BudgetPolicy:
    """Load and validate a policy file; raises `ConfigError` naming file, field and expectation."""
    target = Path(path)
    return parse_policy(_read(target), source=str(target))


def parse_policy(data: object, source: str = "<inline>") -> BudgetPolicy:
    """Validate an already-parsed mapping (from a file, a settings object or a test)."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{source}: the policy is {kind}; expected a mapping with at least "
                          "currency and total_budget")
    try:
        return BudgetPolicy.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {problem}" for problem in describe_errors(exc)]
        count = len(lines)
        # One problem reads as one line; several get a count first, then one line each.
        text = lines[0] if count == 1 else "\n".join([f"{source}: policy has {count} problems:", *lines])
        raise ConfigError(text,
                          details={"source": source, "problems": count}) from None


def check_policy_file(path: str | Path) -> str:
    """A one-paragraph summary of a valid policy file, for `amp-tools policy check FILE`."""
    policy = load_policy(path)
    parts = [f"{path}: OK", f"{policy.label()}", f"currency {policy.currency}",
             f"total budget {policy.total_budget}"]
    if policy.per_transaction_max is not None:
        parts.append(f"per payment at most {policy.per_transaction_max}")
    for period, cap in policy.windows.configured():
        parts.append(f"{period} cap {cap.limit} ({cap.mode})")
    if policy.velocity is not None:
        parts.append(f"at most {policy.velocity.max_payments} payments per {policy.velocity.per}")
    if policy.expires_at is not None:
        parts.append(f"expires {policy.expires_at.isoformat()}")
    parts.extend(_list_rules("merchants", policy.merchants.allow, policy.merchants.deny, policy.merchants.caps))
    parts.extend(_list_rules("MCCs", policy.mccs.allow, policy.mccs.deny, policy.mccs.caps))
    parts.append(_approval_rule(policy))
    negotiation = policy.negotiation
    parts.append(f"negotiation: at most {negotiation.max_rounds} rounds"
                 + (f", offers up to {negotiation.max_offer}" if negotiation.max_offer is not None else ""))
    if policy.agents:
        from amp_tools.policy.subbudgets import agent_policies

        # One walk of the tree: each agent's effective policy is built once (not once per path to it).
        shown = [f"{name} {effective.total_budget}" for name, effective in agent_policies(policy)]
        parts.append(f"sub-budgets: {', '.join(shown)}")
    parts.append(f"snapshot {policy.snapshot_hash()[:12]}")
    return "; ".join(parts)


def _few(entries: list[str] | list[tuple[str, Any]]) -> str:
    shown = [f"{e[0]} {e[1]}" if isinstance(e, tuple) else str(e) for e in entries[:5]]
    return ", ".join(shown) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")


def _list_rules(what: str, allow: list[str], deny: list[str], caps: dict[str, Any]) -> list[str]:
    """The allow-list, deny-list and caps of merchants or MCCs, as the OK line says them."""
    out = [f"only {what} {_few(allow)}"] if allow else ([] if deny else [f"any {what}"])
    if deny:
        out.append(f"never {what} {_few(deny)}")
    if caps:
        out.append(f"caps per {what[:-1]} {_few(list(caps.items()))}")
    return out


def _approval_rule(policy: BudgetPolicy) -> str:
    rules = policy.approval
    if rules.confirm_all:
        return "a person approves every payment"
    asked = [f"above {rules.confirm_above}"] if rules.confirm_above is not None else []
    asked += [text for flag, text in ((rules.confirm_new_merchants, "for a new merchant"),
                                      (rules.confirm_human_present, "for purchases made with the user present"),
                                      (rules.confirm_refunds, "for refunds")) if flag]
    return "a person approves " + " or ".join(asked) if asked else "no person is asked (no approval rule)"


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file (for editors and `amp-tools policy schema`)."""
    schema = BudgetPolicy.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# ---------------------------------------------------------------------- error text
_MESSAGES = {
    "missing": "required field is missing",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping of keys to values",
    "model_type": "expected a mapping of fields",
    "model_attributes_type": "expected a mapping of fields",
    "datetime_type": "expected a timestamp such as \"2025-12-31T23:59:59Z\"",
    "datetime_parsing": "expected a timestamp such as \"2025-12-31T23:59:59Z\"",
    "datetime_from_date_parsing": "expected a timestamp such as \"2025-12-31T23:59:59Z\"",
}


def describe_errors(exc: ValidationError) -> list[str]:
    """One ``field.path: what is wrong; what is expected`` line per pydantic error."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        path = ".".join(str(part) for part in loc) or "(top level)"
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            message = _unknown_field(loc)
        elif kind in _MESSAGES:
            message = _MESSAGES[kind]
            if kind != "missing":
                message = f"{_shown(err.get('input'))} is not valid; {message}"
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            message = f"{_shown(err.get('input'))} is out of range; {err.get('msg', '').lower()}"
        elif kind == "literal_error":
            message = f"{_shown(err.get('input'))} is not allowed; {err.get('msg', '').lower()}"
        else:
            message = str(err.get("msg", "invalid"))
        out.append(f"{path}: {message}")
    return out


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_field(loc: tuple[Any, ...]) -> str:
    known = _fields_at(loc[:-1])
    name = str(loc[-1]) if loc else "?"
    message = f"unknown field {name!r}"
    if known:
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        message += f"; expected one of: {', '.join(sorted(known))}"
    return message


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names a mapping at `loc` may hold (following nested models)."""
    model: type[BaseModel] | None = BudgetPolicy
    keyed = False  # the previous part was a mapping of models (`agents`): this part is a key, not a field
    for part in loc:
        if model is None:
            return []
        if keyed:
            keyed = False
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        keyed = get_origin(info.annotation) is dict
        model = _model_of(info.annotation)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None
