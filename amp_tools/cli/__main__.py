"""``python -m amp_tools.cli ...``: the same as ``amp-tools ...`` without the console script."""

from __future__ import annotations

from amp_tools.cli._main import main

if __name__ == "__main__":
    main()
