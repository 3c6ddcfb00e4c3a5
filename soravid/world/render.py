"""Render shapes-world clips, frame by frame, exactly per the contract (see `spec`).

Coordinates are continuous pixels: x to the right, y down, pixel (row i, column j) covers
[j, j+1) x [i, i+1). The object's position is the centre of its D x D bounding box.

Edges are anti-aliased by supersampled coverage: each pixel is blended between background and
object colour by the share of a 4x4 grid of sample points inside the shape, so sub-pixel motion
is visible and a small triangle still looks like a triangle.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soravid.errors import BadInputError
from soravid.world.spec import (
    BOUNCE_COMPONENT,
    DIRECTIONS,
    PALETTE,
    WorldAttributes,
    object_extent,
    speed,
)

SUPERSAMPLE = 4  # sample points per pixel side for anti-aliasing


@dataclass(frozen=True)
class Trajectory:
    """Where the object's centre is at any time: a straight line, wrapped or reflected."""

    start: tuple[float, float]
    velocity: tuple[float, float]  # pixels per second
    canvas: tuple[int, int]  # (width, height)
    bounce_margin: float | None  # half the extent for bouncing (reflect there); None wraps

    def position(self, seconds: float) -> tuple[float, float]:
        x, y = (p + v * seconds for p, v in zip(self.start, self.velocity, strict=True))
        width, height = self.canvas
        if self.bounce_margin is None:
            return x % width, y % height
        m = self.bounce_margin
        return _reflect(x, m, width - m), _reflect(y, m, height - m)


def _reflect(p: float, low: float, high: float) -> float:
    """Fold a free coordinate into [low, high] as a ball bouncing between two walls would be."""
    span = high - low
    if span <= 0:
        return low
    u = (p - low) % (2 * span)
    return low + (u if u <= span else 2 * span - u)


def start_trajectory(
    attrs: WorldAttributes, width: int, height: int, rng: np.random.Generator
) -> Trajectory:
    """A random start and the motion's velocity."""
    extent = object_extent(attrs.size, width, height)
    v = speed(width, height)
    if attrs.motion in DIRECTIONS:
        dx, dy = DIRECTIONS[attrs.motion]
        start = (rng.uniform(0, width), rng.uniform(0, height))
        return Trajectory(start, (dx * v, dy * v), (width, height), None)
    # Bouncing objects start fully inside (the contract); still ones too, so they look whole.
    margin = extent / 2
    start = (rng.uniform(margin, width - margin), rng.uniform(margin, height - margin))
    if attrs.motion == "still":
        return Trajectory(start, (0.0, 0.0), (width, height), extent / 2)
    signs = rng.choice([-1.0, 1.0], size=2)
    velocity = (signs[0] * v * BOUNCE_COMPONENT, signs[1] * v * BOUNCE_COMPONENT)
    return Trajectory(start, velocity, (width, height), extent / 2)


def start_position(
    attrs: WorldAttributes, width: int, height: int, seed: int
) -> tuple[float, float]:
    """Where the object's centre is in frame 0 of the clip `render_frames` draws for `seed`."""
    return start_trajectory(attrs, width, height, np.random.default_rng(seed)).position(0.0)


def shape_coverage(
    shape: str, extent: float, offset: tuple[float, float], size: tuple[int, int]
) -> np.ndarray:
    """Share of each pixel of a (height, width) = `size` patch inside the shape, float32.

    `offset` is the (x, y) centre of the shape's bounding box relative to the patch's top-left
    corner, in pixels.
    """
    height, width = size
    xs = (np.arange(width * SUPERSAMPLE, dtype=np.float32) + 0.5) / SUPERSAMPLE - offset[0]
    ys = (np.arange(height * SUPERSAMPLE, dtype=np.float32) + 0.5) / SUPERSAMPLE - offset[1]
    xs, ys = xs[None, :], ys[:, None]
    half = extent / 2
    if shape == "circle":
        inside = xs * xs + ys * ys <= half * half
    elif shape == "square":
        inside = (np.abs(xs) <= half) & (np.abs(ys) <= half)
    else:  # triangle pointing up: apex at (0, -half), base from (-half, half) to (half, half)
        inside = (ys <= half) & (np.abs(xs) <= (ys + half) / 2)
    grid = inside.reshape(height, SUPERSAMPLE, width, SUPERSAMPLE)
    return grid.mean(axis=(1, 3), dtype=np.float32)


def draw_object(
    frame: np.ndarray, attrs: WorldAttributes, centre: tuple[float, float], extent: float
) -> None:
    """Blend the object into `frame` (H, W, 3) uint8 in place, wrapping around the torus."""
    height, width = frame.shape[:2]
    size = math.ceil(extent) + 3  # the shape plus a pixel of margin on every side
    left = math.floor(centre[0] - extent / 2) - 1
    top = math.floor(centre[1] - extent / 2) - 1
    offset = (centre[0] - left, centre[1] - top)
    cover = shape_coverage(attrs.shape, extent, offset, (size, size))
    rows = np.arange(top, top + size) % height
    cols = np.arange(left, left + size) % width
    background = np.asarray(PALETTE[attrs.background], dtype=np.float32)
    colour = np.asarray(PALETTE[attrs.colour], dtype=np.float32)
    patch = background + cover[..., None] * (colour - background)  # (size, size, 3)
    frame[np.ix_(rows, cols)] = (patch + 0.5).astype(np.uint8)


def frame_count(fps: float, seconds: float) -> int:
    """Frames in a clip, the same rule as `ResolvedPreset.frames`."""
    return max(1, round(seconds * fps))


def render_frames(
    attrs: WorldAttributes, width: int, height: int, fps: float, seconds: float, seed: int
) -> Iterator[np.ndarray]:
    """Stream a clip as uint8 (H, W, 3) frames; the seed fixes the start and bounce direction."""
    if not attrs.is_complete:
        missing = [k for k, v in attrs.to_dict().items() if v is None]
        raise BadInputError(f"cannot render a clip without {', '.join(missing)}")
    trajectory = start_trajectory(attrs, width, height, np.random.default_rng(seed))
    extent = object_extent(attrs.size, width, height)
    background = np.asarray(PALETTE[attrs.background], dtype=np.uint8)
    for index in range(frame_count(fps, seconds)):
        frame = np.empty((height, width, 3), dtype=np.uint8)
        frame[...] = background
        draw_object(frame, attrs, trajectory.position(index / fps), extent)
        yield frame


def render_clip(
    attrs: WorldAttributes, width: int, height: int, fps: float, seconds: float, seed: int
) -> np.ndarray:
    """A whole clip at once, (T, H, W, 3) uint8: convenient for short training clips."""
    return np.stack(list(render_frames(attrs, width, height, fps, seconds, seed)))


def save_clip(
    path: str | Path,
    attrs: WorldAttributes,
    width: int,
    height: int,
    fps: float,
    seconds: float,
    seed: int,
) -> Path:
    """Render a clip straight into an MP4 (H.264, through `soravid.video.VideoWriter`)."""
    from soravid.video import VideoWriter

    with VideoWriter(path, width, height, fps, overwrite=True) as writer:
        for frame in render_frames(attrs, width, height, fps, seconds, seed):
            writer.write(frame)
    return Path(path)
