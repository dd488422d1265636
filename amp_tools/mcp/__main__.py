"""``python -m amp_tools.mcp ...``: the same as ``amp-tools mcp ...`` without the console script."""

from __future__ import annotations

import sys

from amp_tools.cli import main

if __name__ == "__main__":
    sys.argv = ["amp-tools", "mcp", *sys.argv[1:]]
    main()
