"""The judge agrees with the renderer after H.264, and notices each kind of mismatch.

The full sweep (200+ clips of 5-60 s) is benchmarks/judge_sweep.py; this is its fast subset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from soravid.errors import VideoReadError
from soravid.video import VideoWriter
from soravid.world.captions import canonical_caption
from soravid.world.judge import Verdict, judge_frames, judge_video, window_bounds
from soravid.world.measure import torus_regions
from soravid.world.render import render_frames, save_clip
from soravid.world.spec import (
    ATTRIBUTE_VALUES,
    BACKGROUND_COLOURS,
    MOTIONS,
    OBJECT_COLOURS,
    SHAPES,
    SIZES,
    WorldAttributes,
)

CANVASES = [(96, 64), (64, 112), (64, 64), (48, 32), (32, 56), (112, 64)]  # land, port, square
FPS = [8, 12, 30, 24, 16]


def subset_case(i: int) -> tuple[WorldAttributes, tuple[int, int], int]:
    """Case i of 24: together they hold every attribute value, canvas shape and fps 8..30."""
    colour = OBJECT_COLOURS[i % len(OBJECT_COLOURS)]
    background = BACKGROUND_COLOURS[(i // 2) % len(BACKGROUND_COLOURS)]
    if background == colour:
        background = "black"
    attrs = WorldAttributes(
        background, colour, SHAPES[i % 3], SIZES[(i // 3) % 2], MOTIONS[i % len(MOTIONS)]
    )
    return attrs, CANVASES[i % len(CANVASES)], FPS[i % len(FPS)]


def test_subset_covers_every_value() -> None:
    cases = [subset_case(i) for i in range(24)]
    for name, values in ATTRIBUTE_VALUES.items():
        assert {getattr(a, name) for a, _, _ in cases} == set(values)
    assert {(w > h) - (w < h) for _, (w, h), _ in cases} == {-1, 0, 1}
    assert {8, 30} <= {fps for _, _, fps in cases}


@pytest.mark.parametrize("case", range(24))
def test_judge_agrees_with_renderer_after_h264(case: int, tmp_path: Path) -> None:
    attrs, (width, height), fps = subset_case(case)
    seconds = 12 if case % 8 == 0 else 5
    path = save_clip(tmp_path / "clip.mp4", attrs, width, height, fps, seconds, seed=case)
    verdict = judge_video(path, canonical_caption(attrs))
    failing = [w.to_dict() for w in verdict.windows if not w.passed]
    assert verdict.passed, failing
    assert len(verdict.windows) == (2 if seconds == 12 else 1)
    assert verdict.expected == attrs and verdict.drift == 0


@pytest.fixture(scope="module")
def red_ball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    attrs = WorldAttributes("black", "red", "circle", "large", "moving right")
    path = tmp_path_factory.mktemp("clips") / "red-ball.mp4"
    return save_clip(path, attrs, 96, 64, 8, 5, seed=1)


@pytest.mark.parametrize(
    ("caption", "wrong"),
    [
        ("a large blue circle moving right on a black background", "colour"),
        ("a large red circle moving right on a white background", "background"),
        ("a large red square moving right on a black background", "shape"),
        ("a large red triangle moving right on a black background", "shape"),
        ("a small red circle moving right on a black background", "size"),
        ("a large red circle moving left on a black background", "motion"),
        ("a large red circle moving up on a black background", "motion"),
        ("a large red circle bouncing on a black background", "motion"),
        ("a large red circle still on a black background", "motion"),
    ],
)
def test_each_mismatch_fails_only_its_check(red_ball: Path, caption: str, wrong: str) -> None:
    verdict = judge_video(red_ball, caption)
    assert not verdict.passed
    checks = verdict.windows[0].checks
    assert [name for name, ok in checks.items() if not ok] == [wrong]


def test_left_out_parts_match_anything(red_ball: Path) -> None:
    assert judge_video(red_ball, "a red ball").passed
    assert judge_video(red_ball, WorldAttributes(shape="circle")).passed


def test_verdict_reports_measurements_and_serialises(red_ball: Path) -> None:
    verdict = judge_video(red_ball, "a big red ball heading right, on black, quickly")
    record = json.loads(json.dumps(verdict.to_dict()))
    assert record["unknown_words"] == ["quickly"]
    window = record["windows"][0]
    assert window["measured"] == {
        "background": "black",
        "colour": "red",
        "shape": "circle",
        "size": "large",
        "motion": "moving right",
    }
    assert window["values"]["extent"] == pytest.approx(0.38, abs=0.02)
    assert window["values"]["motion"]["velocity"][0] == pytest.approx(0.25, abs=0.02)


def test_windows_are_five_seconds_and_a_short_remainder_joins_the_last() -> None:
    assert window_bounds(40, 8) == [(0, 40)]
    assert window_bounds(96, 8) == [(0, 40), (40, 96)]  # 12 s: the last 2 s join
    assert window_bounds(104, 8) == [(0, 40), (40, 80), (80, 104)]  # 13 s: 3 s stands alone
    assert window_bounds(10, 8) == [(0, 10)]


def test_worst_window_and_drift_follow_a_clip_that_goes_wrong() -> None:
    good = WorldAttributes("navy", "yellow", "square", "small", "moving down")
    bad = WorldAttributes("navy", "cyan", "square", "small", "moving down")
    frames = [*render_frames(good, 64, 64, 8, 10, 0), *render_frames(bad, 64, 64, 8, 5, 0)]
    windows = judge_frames(iter(frames), 8, len(frames), good)
    verdict = Verdict("synthetic", canonical_caption(good), good, windows)
    assert [w.passed for w in windows] == [True, True, False]
    assert windows[2].measured["colour"] == "cyan"
    assert verdict.worst == 2
    assert verdict.drift == pytest.approx(1 / 6)


def test_a_blank_clip_has_no_object(tmp_path: Path) -> None:
    path = tmp_path / "blank.mp4"
    with VideoWriter(path, 64, 64, 8) as writer:
        for _ in range(16):
            writer.write(np.full((64, 64, 3), 128, dtype=np.uint8))
    window = judge_video(path, "a red circle").windows[0]
    assert window.measured["background"] == "gray"
    assert not window.checks["object"] and window.measured["colour"] is None


def test_two_objects_fail_the_object_check() -> None:
    attrs = WorldAttributes("black", "green", "circle", "small", "still")
    first = render_frames(attrs, 96, 64, 8, 2, seed=0)
    second = render_frames(attrs, 96, 64, 8, 2, seed=7)
    frames = [np.maximum(a, b) for a, b in zip(first, second, strict=True)]
    window = judge_frames(iter(frames), 8, len(frames), attrs)[0]
    assert window.values["one_object_share"] == 0 and not window.checks["object"]


def test_missing_file_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(VideoReadError, match="no such file"):
        judge_video(tmp_path / "nope.mp4", "a red circle")


def test_regions_join_across_torus_edges_and_corners() -> None:
    mask = np.zeros((8, 10), dtype=bool)
    mask[0, 0] = mask[7, 9] = mask[0, 9] = True  # one region through the corner
    mask[5, 5:7] = True  # a second region
    mask[2, 2] = mask[3, 3] = True  # diagonal neighbours: a third
    ys, xs, labels = torus_regions(mask)
    regions = {frozenset(zip(ys[labels == lab], xs[labels == lab], strict=True)) for lab in labels}
    assert regions == {
        frozenset({(0, 0), (0, 9), (7, 9)}),
        frozenset({(5, 5), (5, 6)}),
        frozenset({(2, 2), (3, 3)}),
    }


def test_fewer_frames_than_announced_is_a_read_error() -> None:
    frames = render_frames(
        WorldAttributes("black", "red", "circle", "large", "still"), 64, 64, 8, 1, 0
    )
    with pytest.raises(VideoReadError, match="ended after 8 of its 12 frames"):
        judge_frames(frames, 8, 12, WorldAttributes())


def test_a_bounce_that_runs_through_an_edge_is_no_bounce() -> None:
    """The same bouncing clip moved half a canvas over: the object's velocities are unchanged,
    but it is drawn across the edges, which a bouncing object never is."""
    attrs = WorldAttributes(
        background="black", colour="red", shape="square", size="large", motion="bouncing"
    )
    frames = list(render_frames(attrs, 96, 64, 8, 5, seed=0))
    bounce = judge_frames(iter(frames), 8, len(frames), attrs)[0]
    assert bounce.measured["motion"] == "bouncing" and bounce.values["across_edge_px"] == 0
    wrapped = [np.roll(frame, (32, 48), axis=(0, 1)) for frame in frames]
    window = judge_frames(iter(wrapped), 8, len(wrapped), attrs)[0]
    assert window.values["across_edge_px"] >= 3 and not window.checks["motion"]
    assert window.checks["shape"] and window.checks["size"]  # measured whole across the edge
