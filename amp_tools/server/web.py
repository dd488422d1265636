"""Request plumbing of the owner console: what a request may be, and how it is read.

Owns the response security headers, the allowed-host check (against DNS rebinding), the
same-site check of state-changing requests (``Origin`` and ``Sec-Fetch-Site``), the bounded
and validated reading of form or JSON bodies, and id validation. Refusals raise `Refused`
with the HTTP status to answer.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from fastapi import Request

from amp_tools.errors import InvalidArguments

__all__ = ["HEADERS", "MAX_BODY", "Refused", "bounded_body", "declared_too_large", "form_of", "host_of", "same_site",
           "valid_budget_id", "valid_id", "wants_json"]

MAX_BODY = 16 * 1024
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:")
HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'"),
    # same-origin (not no-referrer): with no-referrer, browsers send `Origin: null` on the console's own forms.
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin",
}


class Refused(Exception):
    """The request is refused with `status` and a message saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def valid_id(value: str, what: str) -> str:
    if not value or len(value) > 128 or not set(value) <= _ID_CHARS:
        raise InvalidArguments(f"{what} {value[:40]!r} is not a valid id (letters, digits and _-.: only)")
    return value


def valid_budget_id(value: str) -> str:
    """A budget id as it came in a path. The ledger accepts any text as an id (and every page escapes
    it), so only what cannot be one is refused: empty, over 200 characters, control characters or
    an empty ``/`` part (a sub-budget's id is ``parent/agent``)."""
    if not value or len(value) > 200 or any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or \
            not all(value.split("/")):
        raise InvalidArguments(f"budget id {value[:40]!r} is not a valid budget id (1 to 200 printable "
                               "characters; a sub-budget is parent/agent)")
    return value


def host_of(header: str) -> str:
    """The host name of a Host header without its port (``[::1]:8765`` -> ``[::1]``)."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0]


def wants_json(request: Request) -> bool:
    return (request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")
            or request.headers.get("content-type", "").startswith("application/json"))


def same_site(request: Request) -> bool:
    """False for a request another site's page made (by Fetch metadata or a foreign or opaque Origin)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme == request.url.scheme


def declared_too_large(request: Request) -> bool:
    """True when the request announces a body over `MAX_BODY` (or a length that is not a number)."""
    declared = request.headers.get("content-length")
    if declared is None:
        return False
    return not declared.strip().isdigit() or int(declared) > MAX_BODY


async def bounded_body(request: Request) -> bytes:
    """The body, read only while it stays within `MAX_BODY`: a declared length over it is refused before a
    byte is read, and a chunked body is cut off as soon as it passes the limit."""
    if declared_too_large(request):
        raise Refused(413, f"the request body is larger than {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Refused(413, f"the request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def form_of(request: Request) -> dict[str, str]:
    """The body as a flat dict of strings: url-encoded form or a JSON object, at most `MAX_BODY` bytes."""
    body = await bounded_body(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if not body:
        return {}
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise Refused(400, "the body is not valid JSON") from exc
        if not isinstance(data, dict) or not all(isinstance(v, str | bool) for v in data.values()):
            raise Refused(400, "the JSON body must be an object of strings")
        return {str(k): str(v).lower() if isinstance(v, bool) else v for k, v in data.items()}
    if kind == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
        except (UnicodeDecodeError, ValueError) as exc:
            raise Refused(400, "the form is not valid UTF-8 url-encoded data") from exc
        return {k: v[0] for k, v in parsed.items()}
    raise Refused(415, "send application/x-www-form-urlencoded or application/json")
