"""The one place the release's version and distribution name are written.

`pyproject.toml` reads `__version__` from here at build time, so the wheel's metadata, `import
amp_tools; amp_tools.__version__`, `amp-tools --version` and the MCP server's announced version never
disagree.
"""

__all__ = ["DISTRIBUTION", "__version__"]

#: The name on the package index. It differs from the import name (`amp_tools`) and the command
#: (`amp-tools`) because the index's `amp-tools` belongs to an unrelated project.
DISTRIBUTION = "amp-agent-payments"

__version__ = "0.2.0"
