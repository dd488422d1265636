"""What every tool's argument model is built from: the strict base model and the bounded field types.

Each tool's own model sits beside its function (`_shopping`, `_paying`, `_reporting`). Amounts are
decimal strings with a pattern, never JSON numbers; identifiers are bounded strings; nothing an
argument model accepts is a secret or an approval.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from amp_tools.untrusted import clean_text

__all__ = ["ID_PATTERN", "MerchantId", "NetworkText", "ToolArgs"]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
#: A merchant id inside a list: bounded like every other id, so no unbounded text reaches a message.
MerchantId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


def _network_text(value: str) -> str:
    """Model-written text sent to the wallet or a merchant, cleaned like merchant text (no control, bidi or
    zero-width characters, one line); refused if nothing readable is left of a text that had some."""
    cleaned = clean_text(value, 300)
    if value and not cleaned:
        raise ValueError("must contain readable text (control and format characters are removed)")
    return cleaned


#: Model text that reaches the network: `request_mandate.purpose`, `refund.reason`.
NetworkText = Annotated[str, AfterValidator(_network_text)]


class ToolArgs(BaseModel):
    """The base of every argument model: unknown keys are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
