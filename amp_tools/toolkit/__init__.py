"""The AMP toolkit: one session's client, Guard and state, and the tool specs adapters wrap."""

from amp_tools.toolkit.toolkit import AmpToolkit, WalletAction, WalletPrompt

__all__ = ["AmpToolkit", "WalletAction", "WalletPrompt"]
