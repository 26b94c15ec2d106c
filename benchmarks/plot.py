"""A small SVG line chart for the README, written by hand so the benchmarks need no plotting library."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, MARGIN = 640, 360, 60
COLOURS = ("#c0392b", "#2c7fb8", "#7f7f7f", "#31a354")


def line_chart(title: str, x_label: str, y_label: str, series: dict[str, list[tuple[float, float]]]) -> str:
    """An SVG document plotting each named series of (x, y) points, axes starting at zero."""
    points = [p for values in series.values() for p in values]
    x_max = max(x for x, _ in points) * 1.05
    y_max = max(y for _, y in points) * 1.1
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def at(x: float, y: float) -> tuple[float, float]:
        return MARGIN + x / x_max * plot_w, HEIGHT - MARGIN - y / y_max * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 20}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="16" y="{HEIGHT / 2}" text-anchor="middle" transform="rotate(-90 16 {HEIGHT / 2})">'
        f'{escape(y_label)}</text>',
    ]
    for i in range(6):
        y = y_max / 1.1 * i / 5
        _, py = at(0, y)
        parts.append(f'<text x="{MARGIN - 6}" y="{py + 4:.1f}" text-anchor="end">{y:.3g}</text>')
        parts.append(f'<line x1="{MARGIN}" y1="{py:.1f}" x2="{WIDTH - MARGIN}" y2="{py:.1f}" stroke="#eee"/>')
    for x in sorted({x for x, _ in points}):
        px, _ = at(x, 0)
        parts.append(f'<text x="{px:.1f}" y="{HEIGHT - MARGIN + 16}" text-anchor="middle">{x:g}</text>')
    for index, (name, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in (at(x, y) for x, y in sorted(values)))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in values:
            px, py = at(x, y)
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<rect x="{MARGIN + 12}" y="{MARGIN + 4 + 18 * index}" width="12" height="4" fill="{colour}"/>')
        parts.append(f'<text x="{MARGIN + 30}" y="{MARGIN + 10 + 18 * index}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
