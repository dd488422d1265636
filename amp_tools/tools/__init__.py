"""Framework-neutral tool specs for AMP shopping and payment."""

from amp_tools.tools.spec import ToolSpec, run_sync, validation_message

__all__ = ["ToolSpec", "run_sync", "validation_message"]
