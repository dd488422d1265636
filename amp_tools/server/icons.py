"""The console's app icons and web app manifest, so a phone can install it to its home screen.

The SVG is written by hand; the PNGs (Android and iOS want raster icons) are drawn here from
the same shapes, pixel by pixel, with no image library: a dark tile with a green coin and a
check mark. Both are small and built once per size.
"""

from __future__ import annotations

import functools
import json
import struct
import zlib

__all__ = ["ICON_SVG", "MANIFEST", "SIZES", "icon_png"]

SIZES = (180, 192, 512)

ICON_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
            '<rect width="64" height="64" rx="12" fill="#101828"/>'
            '<circle cx="32" cy="32" r="20" fill="#12b76a"/>'
            '<path d="M22 33l7 7 14-15" fill="none" stroke="#fff" stroke-width="5" stroke-linecap="round" '
            'stroke-linejoin="round"/></svg>')

MANIFEST = json.dumps({
    "name": "amp-tools owner console", "short_name": "amp-tools", "start_url": "/", "scope": "/",
    "display": "standalone", "background_color": "#f6f7f9", "theme_color": "#101828",
    "description": "Approve your agents' payments and watch every budget.",
    "icons": [{"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
              *({"src": f"/static/icon-{n}.png", "sizes": f"{n}x{n}", "type": "image/png", "purpose": "any"}
                for n in SIZES)],
}, indent=1)


def _segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return float(((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2) ** 0.5)


def _pixel(x: float, y: float) -> bytes:
    """The colour at (x, y) in the 64-unit square of the SVG above."""
    if (x - 32) ** 2 + (y - 32) ** 2 > 400:
        return b"\x10\x18\x28"
    if min(_segment_distance(x, y, 22, 33, 29, 40), _segment_distance(x, y, 29, 40, 43, 25)) <= 2.5:
        return b"\xff\xff\xff"
    return b"\x12\xb7\x6a"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@functools.cache
def icon_png(size: int) -> bytes:
    """A `size` x `size` RGB PNG of the icon (full-bleed: home screens round the corners themselves)."""
    scale = 64 / size
    raw = b"".join(b"\x00" + b"".join(_pixel((x + 0.5) * scale, (y + 0.5) * scale) for x in range(size))
                   for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b""))
