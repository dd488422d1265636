"""The AMP toolkit: one session's client, Guard and state, and the tool specs adapters wrap.

What programs and adapters use is exported here: `AmpToolkit`, its `ToolSpec` list, the wallet
prompt types, `run_sync` and `validation_message`. The modules with a leading underscore are the
toolkit's internals: the tools themselves (`_shopping`, `_paying`, `_reporting`, each tool declared
once on its function with `_specs.tool`), the session core and state, result bounds and output schemas.
`budget`, `directory` and `legs` are public for the command line and the MCP server.
"""

from amp_tools.toolkit._core import WalletAction, WalletPrompt
from amp_tools.toolkit._specs import ToolSpec, run_sync, validation_message
from amp_tools.toolkit._toolkit import AmpToolkit

__all__ = ["AmpToolkit", "ToolSpec", "WalletAction", "WalletPrompt", "run_sync", "validation_message"]
