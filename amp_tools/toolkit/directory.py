"""Merchants known from configuration: how a toolkit learns its merchants without a registry.

AMP defines no merchant registry (the reference services have none; `/registry/merchants` is our
sandbox's extension), and a merchant's ``startCheckout`` names neither the merchant nor its MCC.
A directory gives each merchant's id, name, MCC and base URL, from a YAML or JSON file or a list
of mappings; ``idempotent_per_checkout: true`` says the merchant answers a replayed payment of a paid
checkout with its original transaction before anything else, so recovery may take its business
refusal of a replay as proof the checkout was never paid. Where a toolkit has a directory, it is
the source of truth and no registry is asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from amp_tools.amp.models import MerchantInfo
from amp_tools.errors import ConfigError
from amp_tools.policy._unique import json_loads, yaml_load

__all__ = ["MerchantDirectory"]

_FIELDS = ("merchant_id", "name", "mcc", "base_url", "categories", "regions", "currencies", "description",
           "idempotent_per_checkout")
_CAMEL = {"merchantId": "merchant_id", "baseUrl": "base_url", "idempotentPerCheckout": "idempotent_per_checkout"}


class MerchantDirectory:
    """An ordered set of merchants by id."""

    def __init__(self, merchants: Iterable[MerchantInfo | Mapping[str, Any]], *, source: str = "merchants") -> None:
        self._by_id: dict[str, MerchantInfo] = {}
        for index, item in enumerate(merchants):
            info = item if isinstance(item, MerchantInfo) else _parse(item, f"{source}[{index}]")
            if info.merchant_id in self._by_id:
                raise ConfigError(f"{source}[{index}].merchant_id: {info.merchant_id!r} is listed twice; "
                                  "each merchant id once")
            self._by_id[info.merchant_id] = info

    @classmethod
    def load(cls, path: str | Path) -> MerchantDirectory:
        """A file holding a list of merchants, or ``{merchants: [...]}`` (YAML or JSON by extension)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"merchant directory {p}: cannot be read ({exc.strerror or exc})") from None
        try:
            # The policy files' parsers: duplicate keys refused, YAML aliases bounded (no billion laughs).
            data = json_loads(text) if p.suffix.lower() == ".json" else yaml_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"merchant directory {p}: not valid {p.suffix.lstrip('.') or 'YAML'} ({exc})") from None
        if isinstance(data, dict) and set(data) == {"merchants"}:
            data = data["merchants"]
        if not isinstance(data, list):
            raise ConfigError(f"merchant directory {p}: expected a list of merchants (or merchants: [...])")
        return cls(data, source=str(p))

    @classmethod
    def of(cls, value: MerchantDirectory | Iterable[MerchantInfo | Mapping[str, Any]] | str | Path | None
           ) -> MerchantDirectory | None:
        if value is None or isinstance(value, MerchantDirectory):
            return value
        if isinstance(value, str | Path):
            return cls.load(value)
        return cls(value)

    def get(self, merchant_id: str) -> MerchantInfo | None:
        return self._by_id.get(merchant_id)

    def all(self) -> list[MerchantInfo]:
        return list(self._by_id.values())

    def find(self, *, query: str | None = None, category: str | None = None,
             region: str | None = None) -> list[MerchantInfo]:
        """Merchants matching every filter given (words against name and description, any word)."""
        words = [w for w in (query or "").casefold().split() if w and w != "*"]
        out = []
        for info in self._by_id.values():
            text = f"{info.name} {info.description or ''} {' '.join(info.categories)}".casefold()
            if words and not any(w in text for w in words):
                continue
            if category and category.casefold() not in {c.casefold() for c in info.categories}:
                continue
            if region and region.casefold() not in {r.casefold() for r in info.regions}:
                continue
            out.append(info)
        return out

    def __len__(self) -> int:
        return len(self._by_id)


def _parse(item: Any, where: str) -> MerchantInfo:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping with merchant_id, name, mcc and base_url")
    unknown = sorted(set(item) - set(_FIELDS) - set(_CAMEL))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown field; expected {', '.join(_FIELDS)}")
    data = {_CAMEL.get(k, k): v for k, v in item.items()}
    if "idempotent_per_checkout" in data and not isinstance(data["idempotent_per_checkout"], bool):
        raise ConfigError(f"{where}.idempotent_per_checkout: true or false is required")
    for required in ("merchant_id", "name"):
        if not isinstance(data.get(required), str) or not data[required].strip():
            raise ConfigError(f"{where}.{required}: a non-empty string is required")
    try:
        return MerchantInfo.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}.{loc}: {first['msg']}") from None
