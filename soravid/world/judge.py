"""Judge a clip against a caption, per the contract: 5-second windows, worst window, drift.

Each frame is measured (`measure.measure_frame`); a window's attributes come from medians over
its frames, so a handful of frames smeared by H.264 cannot flip a verdict:

- background / colour: median colour, nearest palette background / object colour;
- object: exactly one object (region that is not a speck) in at least 90% of frames;
- shape: the shape whose drawn template mismatches least, median over the frames (see
  `measure` for why a fit replaces the area / bounding-box ratio); none if even the best
  mismatches by more than half the object's area;
- size: that shape's extent D against 0.22 S and 0.38 S (within a factor 1.3);
- motion: `motion.classify_motion` on the window's centres.

Windows are WINDOW_SECONDS long; a remainder shorter than half a window joins the last one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from soravid.errors import VideoReadError
from soravid.world.captions import canonical_caption, parse_caption
from soravid.world.measure import FrameMeasure, measure_frame
from soravid.world.motion import classify_motion, measure_motion
from soravid.world.spec import (
    ATTRIBUTE_NAMES,
    BACKGROUND_COLOURS,
    OBJECT_COLOURS,
    PALETTE,
    SIZE_FRACTION,
    WINDOW_SECONDS,
    WorldAttributes,
)

ONE_OBJECT_SHARE = 0.9  # frames that must show exactly one object
SHAPE_TOLERANCE = 0.5  # the best template may mismatch by at most this share of the area
SIZE_TOLERANCE = 1.3  # the extent may be this factor off the contract's D
CHECKS = ("object", *ATTRIBUTE_NAMES)
# A bouncing object stays whole inside the canvas; one seen this many pixels across an edge
# ran through it (a blurred edge pixel or two at the turn is allowed).
BOUNCE_ACROSS_EDGE = 3.0


@dataclass(frozen=True)
class WindowVerdict:
    start: float  # seconds
    end: float
    measured: dict[str, str | None]  # attribute -> value seen (None: none recognised)
    checks: dict[str, bool]  # "object" and each attribute -> matches the caption
    values: dict  # the numbers behind `measured`, for people and reports

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    @property
    def score(self) -> float:
        """Share of checks that pass."""
        return sum(self.checks.values()) / len(self.checks)

    def to_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "passed": self.passed,
            "measured": self.measured,
            "checks": self.checks,
            "values": self.values,
        }


@dataclass(frozen=True)
class Verdict:
    path: str
    caption: str  # what the clip was judged against, in canonical form
    expected: WorldAttributes
    windows: list[WindowVerdict]
    prompt: str = ""  # the caption as given, when it was text
    unknown_words: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(w.passed for w in self.windows)

    @property
    def worst(self) -> int:
        """Index of the window with the fewest passing checks (the first such one)."""
        return min(range(len(self.windows)), key=lambda i: self.windows[i].score)

    @property
    def drift(self) -> float:
        """Share of checks passing in the first window minus in the last (0 for one window)."""
        return self.windows[0].score - self.windows[-1].score

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "caption": self.caption,
            "prompt": self.prompt,
            "expected": self.expected.to_dict(),
            "unknown_words": self.unknown_words,
            "passed": self.passed,
            "worst_window": self.worst,
            "drift": self.drift,
            "windows": [w.to_dict() for w in self.windows],
        }


Progress = Callable[[int, int], None]  # (frames judged, frames in total)


def judge_video(
    path: str | Path,
    caption: str | WorldAttributes,
    on_progress: Progress | None = None,
) -> Verdict:
    """Judge a video file (read through `soravid.video`) against a caption or attributes."""
    from soravid.video import probe_video, read_frames

    info = probe_video(path)
    expected, unknown = _expected(caption)
    windows = judge_frames(read_frames(info), info.fps, info.frames, expected, on_progress)
    prompt = caption if isinstance(caption, str) else ""
    return Verdict(str(path), canonical_caption(expected), expected, windows, prompt, unknown)


def _expected(caption: str | WorldAttributes) -> tuple[WorldAttributes, list[str]]:
    if isinstance(caption, WorldAttributes):
        return caption, []
    parsed = parse_caption(caption)
    return parsed.attributes, parsed.unknown_words


def window_bounds(frames: int, fps: float) -> list[tuple[int, int]]:
    """[start, end) frame ranges of the judging windows of a clip."""
    size = max(1, round(WINDOW_SECONDS * fps))
    starts = list(range(0, frames, size))
    if len(starts) > 1 and frames - starts[-1] < size / 2:
        starts.pop()
    return [(s, e) for s, e in zip(starts, [*starts[1:], frames], strict=True)]


def judge_frames(
    frames: Iterable[np.ndarray],
    fps: float,
    total: int,
    expected: WorldAttributes,
    on_progress: Progress | None = None,
) -> list[WindowVerdict]:
    """Judge `total` uint8 (H, W, 3) frames window by window, holding one window's measures."""
    verdicts, measures = [], []
    bounds = window_bounds(total, fps)
    canvas = None
    for index, frame in enumerate(frames):
        canvas = (frame.shape[1], frame.shape[0])
        measures.append(measure_frame(frame))
        if on_progress is not None:
            on_progress(index + 1, total)
        start, end = bounds[len(verdicts)]
        if index + 1 == end:
            verdicts.append(judge_window(measures, (start / fps, end / fps), fps, canvas, expected))
            measures = []
    if len(verdicts) < len(bounds):
        seen = bounds[len(verdicts)][0] + len(measures)
        raise VideoReadError(f"the video ended after {seen} of its {total} frames")
    return verdicts


def judge_window(
    measures: list[FrameMeasure],
    span: tuple[float, float],
    fps: float,
    canvas: tuple[int, int],
    expected: WorldAttributes,
) -> WindowVerdict:
    """One window's verdict from its frames' measures."""
    seen = [m for m in measures if m.colour_rgb is not None]
    background = np.median([m.background_rgb for m in measures], axis=0)
    measured = {"background": nearest_colour(background, BACKGROUND_COLOURS)}
    values: dict = {"background_rgb": _rounded(background)}
    one_object = sum(m.objects == 1 for m in measures) / len(measures)
    values["one_object_share"] = round(one_object, 3)
    measured["colour"] = None
    if seen:
        colour = np.median([m.colour_rgb for m in seen], axis=0)
        measured["colour"] = nearest_colour(colour, OBJECT_COLOURS)
        values["colour_rgb"] = _rounded(colour)
    measured["shape"], measured["size"] = _shape_and_size(measures, min(canvas), values)
    motion = measure_motion([m.centre for m in measures], fps, canvas)
    measured["motion"] = classify_motion(motion)
    values["motion"] = motion.to_dict() if motion else None
    across_edge = max((m.across_edge for m in seen), default=0.0)
    values["across_edge_px"] = round(across_edge, 1)
    if measured["motion"] == "bouncing" and across_edge >= BOUNCE_ACROSS_EDGE:
        measured["motion"] = None  # it wraps around the torus: a straight diagonal, not a bounce
    checks = {"object": one_object >= ONE_OBJECT_SHARE}
    for name in ATTRIBUTE_NAMES:
        wanted = getattr(expected, name)
        checks[name] = measured[name] is not None and wanted in (None, measured[name])
    return WindowVerdict(span[0], span[1], measured, checks, values)


def _shape_and_size(
    measures: list[FrameMeasure], short_side: int, values: dict
) -> tuple[str | None, str | None]:
    """Best-fitting shape and its size class over the frames where the object is whole."""
    fits = [m.fit for m in measures if m.fit is not None]
    if not fits:
        return None, None
    errors = {s: float(np.median([f.errors[s] for f in fits])) for s in fits[0].errors}
    shape = min(errors, key=errors.__getitem__)
    extent = float(np.median([f.extents[shape] for f in fits])) / short_side
    values["shape_errors"] = {s: round(e, 3) for s, e in errors.items()}
    values["extent"] = round(extent, 4)  # D as a share of the short side
    size = min(SIZE_FRACTION, key=lambda s: abs(np.log(extent / SIZE_FRACTION[s])))
    size_ok = abs(np.log(extent / SIZE_FRACTION[size])) <= np.log(SIZE_TOLERANCE)
    shape_ok = errors[shape] <= SHAPE_TOLERANCE
    return (shape if shape_ok else None), (size if size_ok else None)


def nearest_colour(rgb: np.ndarray, names: Iterable[str]) -> str:
    """The palette colour among `names` closest to `rgb` (Euclidean)."""
    return min(names, key=lambda n: float(np.linalg.norm(rgb - np.asarray(PALETTE[n]))))


def _rounded(rgb: np.ndarray) -> list[float]:
    return [round(float(c), 1) for c in rgb]
