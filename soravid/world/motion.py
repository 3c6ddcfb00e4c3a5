"""Name the motion in a run of object centres: still, moving left/right/up/down, or bouncing.

Velocities are measured over a quarter-second lag (so centroid jitter of a fraction of a pixel
does not read as motion), from per-frame displacements unwrapped across the torus seams, in
units of the short side S per second. A window's motion comes from medians: the median speed
along each axis, and the median signed velocity for the direction. Medians ignore the few lags
that straddle a bounce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soravid.world.spec import BOUNCE_COMPONENT, DIRECTIONS, SPEED_FRACTION

LAG_SECONDS = 0.25
STILL_BELOW = 0.3  # share of the contract speed under which an axis counts as not moving
SPEED_TOLERANCE = 0.4  # a moving axis may be this share faster or slower than the contract


@dataclass(frozen=True)
class MotionMeasure:
    velocity: tuple[float, float]  # median signed (x, y) velocity, S per second (y down)
    speed: tuple[float, float]  # median |velocity| along x and y, S per second
    samples: int  # lagged velocity samples the medians came from

    def to_dict(self) -> dict:
        rounded = {k: [round(v, 4) for v in getattr(self, k)] for k in ("velocity", "speed")}
        return {**rounded, "samples": self.samples}


def measure_motion(
    centres: list[tuple[float, float] | None], fps: float, canvas: tuple[int, int]
) -> MotionMeasure | None:
    """Median velocities of a run of per-frame centres (None where no object was found)."""
    steps = _displacements(centres, canvas)  # (N-1, 2) pixels per frame, NaN where unknown
    lag = max(1, round(LAG_SECONDS * fps))
    if len(steps) < lag:
        return None
    known = ~np.isnan(steps[:, 0])
    path = np.concatenate([[[0.0, 0.0]], np.cumsum(np.where(known[:, None], steps, 0.0), axis=0)])
    count = np.concatenate([[0], np.cumsum(known)])
    whole = (count[lag:] - count[:-lag]) == lag  # lags where every frame's step is known
    if not whole.any():
        return None
    velocity = (path[lag:] - path[:-lag])[whole] * fps / lag / min(canvas)  # (K, 2) S/s
    signed = np.median(velocity, axis=0)
    speed = np.median(np.abs(velocity), axis=0)
    return MotionMeasure(
        (float(signed[0]), float(signed[1])), (float(speed[0]), float(speed[1])), len(velocity)
    )


def _displacements(centres: list, canvas: tuple[int, int]) -> np.ndarray:
    """Frame-to-frame centre steps, each taken the short way round the torus."""
    points = np.array([c if c is not None else (np.nan, np.nan) for c in centres], dtype=float)
    period = np.array(canvas, dtype=float)
    steps = np.diff(points.reshape(-1, 2), axis=0)
    return (steps + period / 2) % period - period / 2


def classify_motion(measure: MotionMeasure | None) -> str | None:
    """The contract's motion these velocities show, or None when they match none."""
    if measure is None:
        return None
    speed_x, speed_y = (s / SPEED_FRACTION for s in measure.speed)  # in units of the contract v
    if max(speed_x, speed_y) < STILL_BELOW:
        return "still"
    if _near(speed_x, BOUNCE_COMPONENT) and _near(speed_y, BOUNCE_COMPONENT):
        return "bouncing"
    for motion, (dx, dy) in DIRECTIONS.items():
        along, across = (speed_x, speed_y) if dx else (speed_y, speed_x)
        heading = measure.velocity[0] * dx + measure.velocity[1] * dy
        if _near(along, 1.0) and across < STILL_BELOW and heading > 0:
            return motion
    return None


def _near(value: float, target: float) -> bool:
    return abs(value - target) <= SPEED_TOLERANCE * target
