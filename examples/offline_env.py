"""Keep CrewAI offline: its telemetry and tracing must be off before `crewai` is first imported.

Import this module first in an example that uses CrewAI. Values already set win.
"""

from __future__ import annotations

import os

for _name, _value in (("CREWAI_DISABLE_TELEMETRY", "true"), ("OTEL_SDK_DISABLED", "true"),
                      ("CREWAI_TRACING_ENABLED", "false"), ("CREWAI_DISABLE_TRACKING", "true")):
    os.environ.setdefault(_name, _value)
