"""Where the checker may send its requests (the test-amount cap lives in `Target`).

By default only loopback addresses, ``localhost`` names and sandbox hosts (a host label that
is ``sandbox`` or has it as a ``-``/``_``-separated part: ``api-sandbox.example.com``) are
accepted. Anything else needs the operator's explicit statement that they own the endpoint:
the checker binds wallets, creates mandates and makes test payments there.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from amp_tools.errors import ConfigError

__all__ = ["is_safe_host", "require_safe_url"]

_SANDBOX_LABEL = re.compile(r"^(?:.*[-_])?sandbox(?:[-_].*)?$")


def is_safe_host(host: str) -> bool:
    """Loopback, ``localhost`` / ``*.localhost``, or a sandbox host name."""
    name = host.strip("[]").lower().rstrip(".")
    if not name:
        return False
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    if name == "localhost" or name.endswith(".localhost"):
        return True
    return any(_SANDBOX_LABEL.match(label) for label in name.split("."))


def require_safe_url(url: str, what: str, *, owner_confirmed: bool) -> str:
    """`url` without a trailing slash; refuses non-HTTP URLs and, unless confirmed, unsafe hosts."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} {url!r} is not an http(s) URL; expected e.g. http://127.0.0.1:8765")
    if not owner_confirmed and not is_safe_host(parts.hostname):
        raise ConfigError(
            f"{what} host {parts.hostname!r} is neither loopback nor a sandbox host. The checker binds wallets, "
            "creates mandates and makes test payments there; pass --i-own-the-endpoint only if you operate it")
    return url.strip().rstrip("/")
