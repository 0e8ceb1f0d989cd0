"""The Teams app icons, drawn in code so the package needs no binary templates and follows the accent colour."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

# Teams wants a 192x192 full-colour icon and a 32x32 outline icon that is white on transparent
# (msteams-docs msteams-platform/concepts/build-and-test/apps-package.md, "App icons").
COLOR_SIZE = 192
OUTLINE_SIZE = 32
WHITE = (255, 255, 255)

Shape = Callable[[float, float], bool]


def _arrow(x: float, y: float) -> bool:
    """A right-pointing arrow in the unit square: the hand-off from the ERP to a person."""
    shaft = 0.18 <= x <= 0.56 and 0.42 <= y <= 0.58
    head = 0.52 <= x <= 0.84 and abs(y - 0.5) <= (0.84 - x) * 0.8
    return shaft or head


def _coverage(shape: Shape, px: int, py: int, size: int, samples: int = 4) -> float:
    """How much of one pixel the shape covers, so diagonal edges come out smooth instead of jagged."""
    hits = sum(
        shape((px + (i + 0.5) / samples) / size, (py + (j + 0.5) / samples) / size)
        for i in range(samples)
        for j in range(samples)
    )
    return hits / (samples * samples)


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def png(width: int, height: int, pixels: list[list[tuple[int, int, int, int]]]) -> bytes:
    """Encode RGBA rows as a PNG (colour type 6, 8 bits, no filtering): the smallest encoder that is still valid."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def color_icon(accent: str) -> bytes:
    """The 192x192 icon: a white arrow on the accent colour, filling the square as Teams crops it itself."""
    background = _hex_rgb(accent)
    rows = []
    for y in range(COLOR_SIZE):
        row = []
        for x in range(COLOR_SIZE):
            a = _coverage(_arrow, x, y, COLOR_SIZE)
            row.append(tuple(round(w * a + b * (1 - a)) for w, b in zip(WHITE, background)) + (255,))
        rows.append(row)
    return png(COLOR_SIZE, COLOR_SIZE, rows)


def outline_icon() -> bytes:
    """The 32x32 icon: the same arrow in white, everything else fully transparent."""
    rows = [
        [WHITE + (round(255 * _coverage(_arrow, x, y, OUTLINE_SIZE)),) for x in range(OUTLINE_SIZE)]
        for y in range(OUTLINE_SIZE)
    ]
    return png(OUTLINE_SIZE, OUTLINE_SIZE, rows)
