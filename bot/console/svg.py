"""A tiny server-side SVG chart renderer: horizontal grouped bars and a line over labelled points."""

from __future__ import annotations

from html import escape

PALETTE = ("#3b6fd8", "#d8843b", "#2f9e6a", "#a14fc2")
WIDTH, LABEL_W, ROW, PAD = 720, 230, 16, 10


def _t(value: object) -> str:
    return escape(str(value), quote=True)


def _legend(series: tuple[str, ...], y: int) -> str:
    return "".join(
        f'<rect x="{LABEL_W + i * 170}" y="{y}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
        f'<text x="{LABEL_W + i * 170 + 14}" y="{y + 9}" font-size="12">{_t(name)}</text>'
        for i, name in enumerate(series)
    )


def bars(title: str, rows: list[tuple[str, tuple[float, ...]]], series: tuple[str, ...], unit: str) -> str:
    """One group of bars per row label, one bar per series, scaled to the largest value."""
    top = max((v for _, values in rows for v in values), default=0) or 1
    span = WIDTH - LABEL_W - 80
    group = ROW * len(series) + PAD
    height = 30 + group * len(rows) + 10
    parts = [_legend(series, 6)]
    for r, (label, values) in enumerate(rows):
        y0 = 30 + r * group
        parts.append(f'<text x="{LABEL_W - 8}" y="{y0 + ROW * len(series) / 2 + 4}" font-size="12" text-anchor="end">{_t(label)}</text>')
        for s, value in enumerate(values):
            y, w = y0 + s * ROW, max(1.0, value / top * span)
            parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{ROW - 3}" fill="{PALETTE[s % len(PALETTE)]}">'
                         f'<title>{_t(label)} · {_t(series[s])}: {value:.1f} {_t(unit)}</title></rect>')
            parts.append(f'<text x="{LABEL_W + w + 4:.1f}" y="{y + ROW - 5}" font-size="11">{value:.1f} {_t(unit)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_t(title)}" width="{WIDTH}" height="{height}"'
            f' viewBox="0 0 {WIDTH} {height}" font-family="system-ui,sans-serif">{"".join(parts)}</svg>')


def line(title: str, points: list[tuple[str, float]], unit: str) -> str:
    """Points joined left to right in the order given, each labelled below the axis."""
    height, left, bottom, top_pad = 220, 60, 180, 20
    top = max((v for _, v in points), default=0) or 1
    step = (WIDTH - left - 30) / max(1, len(points) - 1)
    xy = [(left + i * step if len(points) > 1 else left + (WIDTH - left) / 2, bottom - v / top * (bottom - top_pad)) for i, (_, v) in enumerate(points)]
    parts = [f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - 20}" y2="{bottom}" stroke="#8a93a5"/>',
             f'<text x="{left - 6}" y="{top_pad + 4}" font-size="11" text-anchor="end">{top:.1f} {_t(unit)}</text>',
             f'<text x="{left - 6}" y="{bottom}" font-size="11" text-anchor="end">0</text>']
    if len(xy) > 1:
        parts.append('<polyline fill="none" stroke="#3b6fd8" stroke-width="2" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')
    for (label, value), (x, y) in zip(points, xy):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#3b6fd8"><title>{_t(label)}: {value:.1f} {_t(unit)}</title></circle>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" font-size="11" text-anchor="middle">{_t(label)}</text>')
        parts.append(f'<text x="{x:.1f}" y="{y - 8:.1f}" font-size="11" text-anchor="middle">{value:.1f}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_t(title)}" width="{WIDTH}" height="{height}"'
            f' viewBox="0 0 {WIDTH} {height}" font-family="system-ui,sans-serif">{"".join(parts)}</svg>')
