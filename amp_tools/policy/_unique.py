"""Parsing policy files safely: a key written twice is refused, and YAML aliases cannot explode.

YAML and JSON let the last duplicate win silently, so ``total_budget`` written twice would quietly
raise a budget; TOML refuses but says only "Cannot overwrite a value". All three now raise
`DuplicateKey`: "the key 'X' appears twice (line L, column C)".

YAML aliases (``*name``) let a few hundred bytes describe billions of nodes (billion laughs): every
consumer that walks the result (validation, hashing, printing) would pay for the expansion. The YAML
is composed into its node graph first, and the graph is measured before anything is built from it:
at most `MAX_ALIASES` alias uses and `MAX_NODES` nodes once every alias is expanded, counted in
time linear in the file (each node's expanded size is computed once), else `ExpansionLimit`, whose
message names the limit and never the expanded value.
"""

from __future__ import annotations

import json
import re
import tomllib
from json.decoder import scanstring  # type: ignore[attr-defined]  # public in CPython, absent from typeshed
from typing import Any

import yaml

__all__ = ["MAX_ALIASES", "MAX_NODES", "DuplicateKey", "ExpansionLimit", "json_loads", "toml_loads", "yaml_load"]

MAX_ALIASES = 100
MAX_NODES = 100_000


class DuplicateKey(ValueError):
    def __init__(self, key: object, where: str = "") -> None:
        shown = repr(key) if len(repr(key)) <= 60 else repr(key)[:57] + "..."
        super().__init__(f"the key {shown} appears twice{where}; keep one of them")
        self.key = key


class ExpansionLimit(ValueError):
    """A YAML document whose aliases expand past what a policy can need."""


def _at(line: int, column: int) -> str:
    return f" (line {line}, column {column})"


# ---------------------------------------------------------------------------------------- YAML
class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:
                continue  # an unhashable key: the base loader reports it
            if repeated:
                mark = key_node.start_mark
                raise DuplicateKey(key, _at(mark.line + 1, mark.column + 1))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _measure(root: yaml.Node) -> None:
    """Refuse a graph with too many alias uses, a node that contains itself, or too large an expansion."""
    sizes: dict[int, int] = {}  # expanded size of each finished node
    reached = {id(root)}
    aliases = 0
    open_: set[int] = set()  # nodes whose children are still being measured
    # Iterative post-order walk: a hostile file must not exhaust the Python stack either.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > MAX_NODES:
                raise ExpansionLimit(f"its aliases expand to more than {MAX_NODES:,} nodes (the limit); "
                                     "write the values out or use fewer aliases")
            sizes[key] = total
            continue
        if key in open_:
            mark = node.start_mark
            raise ExpansionLimit(f"an alias refers to a value that contains it{_at(mark.line + 1, mark.column + 1)}")
        if key in sizes:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in reached:
                aliases += 1  # every node is written once; reaching it again is an alias
                if aliases > MAX_ALIASES:
                    raise ExpansionLimit(f"it uses more than {MAX_ALIASES} aliases (the limit)")
            reached.add(id(child))
            stack.append((child, False))


def yaml_load(text: str) -> Any:
    loader = _UniqueKeyLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _measure(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------------------- JSON
def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _json_duplicate(text: str) -> DuplicateKey | None:
    """The first key written twice in one object of (valid) JSON `text`, with where its second copy starts."""
    stack: list[set[str] | None] = []
    i, size = 0, len(text)
    while i < size:
        ch = text[i]
        if ch == '"':
            value, end = scanstring(text, i + 1)
            j = end
            while j < size and text[j] in " \t\r\n":
                j += 1
            keys = stack[-1] if stack else None
            if j < size and text[j] == ":" and keys is not None:
                if value in keys:
                    return DuplicateKey(value, _at(*_position(text, i)))
                keys.add(value)
            i = end
            continue
        if ch == "{":
            stack.append(set())
        elif ch == "[":
            stack.append(None)
        elif ch in "}]" and stack:
            stack.pop()
        i += 1
    return None


def json_loads(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except DuplicateKey:
        found = _json_duplicate(text)
        if found is None:
            raise
        raise found from None


# ---------------------------------------------------------------------------------------- TOML
_TOML_TWICE = re.compile(r"^Cannot (?:overwrite a value|declare (?P<table>\(.*\)) twice|mutate an inline table"
                         r"|mutate an array)? ?\((?:at line (?P<line>\d+), column \d+|at end of document)\)$")


def toml_loads(text: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_TWICE.match(str(exc))
        if match is None:
            raise
        lines = text.splitlines()
        number = int(match["line"]) if match["line"] else len(lines)
        while not match["line"] and number > 1 and not lines[number - 1].strip():
            number -= 1  # "at end of document": the last line that says something
        line = lines[number - 1] if 0 < number <= len(lines) else ""
        column = len(line) - len(line.lstrip()) + 1
        if match["table"]:
            key: object = ".".join(part.strip().strip("'\"") for part in match["table"].strip("(),").split(",")
                                   if part.strip())
        else:
            key = line.split("=", 1)[0].strip().strip("[]").strip() if "=" in line else line.strip().strip("[]")
        raise DuplicateKey(key, _at(number, column)) from None
