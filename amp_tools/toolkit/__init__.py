"""The AMP toolkit: one session's client, Guard and state, and the tool specs adapters wrap."""

from amp_tools.toolkit.core import WalletAction, WalletPrompt
from amp_tools.toolkit.toolkit import AmpToolkit

__all__ = ["AmpToolkit", "WalletAction", "WalletPrompt"]
