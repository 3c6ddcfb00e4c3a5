"""A small line chart of accuracy (0-100%) per judging window over time, drawn with Pillow.

Pillow comes with imageio, so no plotting library is needed for one chart.
"""

from __future__ import annotations

import numpy as np

SIZE = (720, 420)
MARGIN = {"left": 56, "right": 150, "top": 36, "bottom": 48}
INK, GRID, PAPER = (30, 30, 30), (220, 220, 220), (255, 255, 255)
LINE_COLOURS = [(0, 0, 0), (230, 30, 30), (40, 100, 255), (30, 160, 60), (250, 140, 20),
                (170, 50, 200), (40, 180, 190), (128, 128, 128)]  # fmt: skip


def accuracy_chart(
    spans: list[tuple[float, float]], series: dict[str, list[float]], title: str
) -> np.ndarray:
    """uint8 (H, W, 3) chart: one line per series, a point per window at its middle."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", SIZE, PAPER)
    draw = ImageDraw.Draw(image)
    left, top = MARGIN["left"], MARGIN["top"]
    right, bottom = SIZE[0] - MARGIN["right"], SIZE[1] - MARGIN["bottom"]
    end = max(e for _, e in spans)

    def point(seconds: float, share: float) -> tuple[float, float]:
        return left + (right - left) * seconds / end, bottom - (bottom - top) * share

    for percent in range(0, 101, 25):
        y = point(0, percent / 100)[1]
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((left - 40, y - 6), f"{percent}%", fill=INK)
    for start, stop in spans:
        x = point((start + stop) / 2, 0)[0]
        draw.text((x - 16, bottom + 6), f"{start:g}-{stop:g} s", fill=INK)
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw.text((left, 12), title, fill=INK)
    for n, (name, values) in enumerate(series.items()):
        colour = LINE_COLOURS[n % len(LINE_COLOURS)]
        points = [point((s + e) / 2, v) for (s, e), v in zip(spans, values, strict=True)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        legend_y = top + 18 * n
        draw.line([(right + 14, legend_y + 6), (right + 34, legend_y + 6)], fill=colour, width=3)
        draw.text((right + 40, legend_y), name, fill=INK)
    return np.asarray(image)
