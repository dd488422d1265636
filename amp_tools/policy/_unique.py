"""YAML and JSON parsing that refuse a key written twice in one mapping.

Both parsers let the last duplicate win silently, so ``total_budget`` written twice would
quietly raise a budget; TOML already refuses. `DuplicateKey` names the key and where it is.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

__all__ = ["DuplicateKey", "json_loads", "yaml_load"]


class DuplicateKey(ValueError):
    def __init__(self, key: object, where: str = "") -> None:
        super().__init__(f"the key {key!r} appears twice{where}; keep one of them")
        self.key = key


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
                raise DuplicateKey(key, f" (line {mark.line + 1}, column {mark.column + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def json_loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_pairs)
