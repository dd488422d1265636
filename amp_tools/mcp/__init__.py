"""amp-tools over the Model Context Protocol: ``amp-tools mcp`` serves the guarded tool set.

The same tools every adapter wraps (`AmpToolkit.specs()`), one toolkit per connected client,
over stdio or streamable HTTP. Importing this package does not import the `mcp` SDK (the
``[mcp]`` extra); `amp_tools.mcp.server` does.
"""

from __future__ import annotations
