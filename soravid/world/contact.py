"""Contact sheets: a grid of frames sampled evenly over a video, each labelled with its time.

Frames are streamed and only the sampled ones kept, so a ten-minute clip costs no more memory
than its sheet. Small frames are enlarged by whole pixels (nearest neighbour), so a 64-pixel
object stays sharp for a person to look at.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

MIN_TILES, MAX_TILES = 12, 48
TILES_PER_SECOND = 2
MIN_TILE_SIDE = 128  # frames are enlarged until their short side reaches this
LABEL_HEIGHT = 14
GAP = 4
SHEET_BACKGROUND = (24, 24, 24)
LABEL_COLOUR = (230, 230, 230)


def tile_count(frames: int, seconds: float) -> int:
    """Two tiles per second, at least 12 and at most 48, never more than the frames."""
    wanted = min(max(math.ceil(TILES_PER_SECOND * seconds), MIN_TILES), MAX_TILES)
    return max(1, min(frames, wanted))


def sample_indices(frames: int, tiles: int) -> list[int]:
    """`tiles` frame indices spread evenly from the first frame to the last."""
    return sorted({round(i) for i in np.linspace(0, frames - 1, tiles)})


def contact_sheet(
    path: str | Path, tiles: int | None = None, columns: int | None = None
) -> np.ndarray:
    """A sheet of a video's frames over time, uint8 (H, W, 3)."""
    from soravid.video import probe_video, read_frames

    info = probe_video(path)
    wanted = sample_indices(info.frames, tiles or tile_count(info.frames, info.seconds))
    chosen = set(wanted)
    picked = [(i, f.copy()) for i, f in enumerate(read_frames(info)) if i in chosen]
    labels = [f"{i / info.fps:.1f} s" for i, _ in picked]
    return compose_sheet([f for _, f in picked], labels, columns)


def compose_sheet(
    frames: list[np.ndarray], labels: list[str], columns: int | None = None
) -> np.ndarray:
    """Lay out equally sized frames in rows, each with its label underneath."""
    from PIL import Image, ImageDraw

    columns = columns or (6 if len(frames) <= 24 else 8)
    columns = min(columns, len(frames))
    scale = max(1, math.ceil(MIN_TILE_SIDE / min(frames[0].shape[:2])))
    tile_h, tile_w = frames[0].shape[0] * scale, frames[0].shape[1] * scale
    cell_h, cell_w = tile_h + LABEL_HEIGHT + GAP, tile_w + GAP
    rows = math.ceil(len(frames) / columns)
    sheet = Image.new("RGB", (columns * cell_w + GAP, rows * cell_h + GAP), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for n, (frame, label) in enumerate(zip(frames, labels, strict=True)):
        x, y = GAP + (n % columns) * cell_w, GAP + (n // columns) * cell_h
        enlarged = frame.repeat(scale, axis=0).repeat(scale, axis=1)
        sheet.paste(Image.fromarray(enlarged), (x, y))
        draw.text((x + 2, y + tile_h + 1), label, fill=LABEL_COLOUR)
    return np.asarray(sheet)


def write_png(image: np.ndarray, path: str | Path) -> Path:
    """Save a uint8 (H, W, 3) image as PNG."""
    import imageio.v3 as iio

    iio.imwrite(path, image, extension=".png")
    return Path(path)
