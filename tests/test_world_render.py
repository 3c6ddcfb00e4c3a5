"""The renderer draws exactly what the shapes-world contract says."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from soravid.errors import BadInputError
from soravid.world.render import render_clip, render_frames, shape_coverage, start_trajectory
from soravid.world.spec import (
    ATTRIBUTE_VALUES,
    BACKGROUND_COLOURS,
    OBJECT_COLOURS,
    PALETTE,
    SIZES,
    WorldAttributes,
    sample_attributes,
)

RED_BALL = WorldAttributes("black", "red", "circle", "large", "moving right")


def coverage(frame: np.ndarray, attrs: WorldAttributes) -> np.ndarray:
    """Per-pixel share of object colour, (H, W) float, from the known palette colours."""
    background = np.asarray(PALETTE[attrs.background], dtype=float)
    axis = np.asarray(PALETTE[attrs.colour], dtype=float) - background
    return np.clip((frame.astype(float) - background) @ axis / (axis @ axis), 0, 1)


def torus_centre(cover: np.ndarray) -> np.ndarray:
    """(x, y) centroid of coverage on the torus (circular mean per axis)."""
    centre = []
    for axis, size in ((0, cover.shape[1]), (1, cover.shape[0])):
        profile = cover.sum(axis=axis)
        angle = np.angle((profile * np.exp(2j * np.pi * (np.arange(size) + 0.5) / size)).sum())
        centre.append(angle % (2 * np.pi) * size / (2 * np.pi))
    return np.array(centre)


def test_frames_are_uint8_with_the_requested_count_and_size() -> None:
    frames = list(render_frames(RED_BALL, 96, 64, 8, 2.5, seed=0))
    assert len(frames) == 20
    assert all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in frames)


def test_render_streams_a_ten_minute_clip_lazily() -> None:
    frames = render_frames(RED_BALL, 96, 64, 30, 600, seed=0)
    first = list(itertools.islice(frames, 3))  # a list of 18000 frames would take seconds
    assert len(first) == 3


def test_same_seed_same_clip_other_seed_other_start() -> None:
    a = render_clip(RED_BALL, 64, 64, 8, 1, seed=3)
    assert np.array_equal(a, render_clip(RED_BALL, 64, 64, 8, 1, seed=3))
    assert not np.array_equal(a, render_clip(RED_BALL, 64, 64, 8, 1, seed=4))
    assert np.array_equal(a, np.stack(list(render_frames(RED_BALL, 64, 64, 8, 1, seed=3))))


@pytest.mark.parametrize("background", BACKGROUND_COLOURS)
@pytest.mark.parametrize("colour", OBJECT_COLOURS)
def test_palette_colours_are_drawn_exactly(background: str, colour: str) -> None:
    if colour == background:
        pytest.skip("never rendered")
    attrs = WorldAttributes(background, colour, "square", "large", "still")
    frame = next(render_frames(attrs, 64, 64, 8, 1, seed=0))
    colours = {tuple(int(c) for c in p) for p in frame.reshape(-1, 3)}
    assert PALETTE[background] in colours and PALETTE[colour] in colours
    assert tuple(frame[0, 0]) == PALETTE[background]  # still objects start fully inside


@pytest.mark.parametrize(
    ("shape", "share"), [("circle", np.pi / 4), ("square", 1), ("triangle", 0.5)]
)
@pytest.mark.parametrize("size", SIZES)
def test_shape_area_matches_extent(shape: str, share: float, size: str) -> None:
    attrs = WorldAttributes("navy", "yellow", shape, size, "still")
    extent = {"small": 0.22, "large": 0.38}[size] * 64
    frame = next(render_frames(attrs, 96, 64, 8, 1, seed=1))
    assert coverage(frame, attrs).sum() == pytest.approx(share * extent**2, rel=0.03)


def test_triangle_points_up() -> None:
    cover = shape_coverage("triangle", 20.0, (12.0, 12.0), (24, 24))
    rows = cover.sum(axis=1)
    assert rows[3] < rows[12] < rows[20]  # wider towards the base
    assert cover[:2].sum() == 0 and cover[2:22].sum() > 0  # from y=2 (apex) to y=22 (base)


@pytest.mark.parametrize(
    ("motion", "step"),
    [
        ("moving left", (-1, 0)),
        ("moving right", (1, 0)),
        ("moving up", (0, -1)),
        ("moving down", (0, 1)),
    ],
)
def test_straight_motion_moves_a_quarter_short_side_per_second(motion: str, step: tuple) -> None:
    attrs = WorldAttributes("white", "blue", "circle", "small", motion)
    fps, width, height = 10, 96, 64
    frames = list(render_frames(attrs, width, height, fps, 12, seed=5))
    centres = np.array([torus_centre(coverage(f, attrs)) for f in frames])
    period = np.array([width, height])
    steps = (np.diff(centres, axis=0) + period / 2) % period - period / 2
    expected = np.array(step) * 0.25 * 64 / fps
    assert np.allclose(steps, expected, atol=0.05)


def test_torus_wrap_draws_the_object_on_both_sides() -> None:
    frames = render_clip(RED_BALL, 64, 64, 8, 8, seed=0)  # crosses the right edge at least once
    split = [coverage(f, RED_BALL) for f in frames]
    assert any(c[:, 0].sum() > 1 and c[:, -1].sum() > 1 for c in split)
    area = np.pi / 4 * (0.38 * 64) ** 2
    assert all(c.sum() == pytest.approx(area, rel=0.03) for c in split)  # never clipped


def test_bouncing_stays_inside_and_reverses() -> None:
    attrs = WorldAttributes("gray", "green", "square", "large", "bouncing")
    frames = render_clip(attrs, 96, 64, 12, 10, seed=2)
    covers = [coverage(f, attrs) for f in frames]
    area = (0.38 * 64) ** 2
    for cover in covers:
        assert cover.sum() == pytest.approx(area, rel=0.03)
        assert not (cover[:, 0].any() and cover[:, -1].any())  # never wraps
    xs = np.array([torus_centre(c)[0] for c in covers])
    assert (np.diff(xs) > 0).any() and (np.diff(xs) < 0).any()
    assert np.mean(np.abs(np.diff(xs))) == pytest.approx(0.25 * 64 / 12 / np.sqrt(2), abs=0.03)


def test_bounce_direction_comes_from_the_seed() -> None:
    attrs = WorldAttributes("gray", "green", "square", "large", "bouncing")
    velocities = {
        tuple(np.sign(start_trajectory(attrs, 64, 64, np.random.default_rng(s)).velocity))
        for s in range(20)
    }
    assert velocities == {(-1, -1), (-1, 1), (1, -1), (1, 1)}


def test_still_object_does_not_move() -> None:
    attrs = WorldAttributes("black", "cyan", "triangle", "small", "still")
    frames = render_clip(attrs, 48, 32, 8, 2, seed=0)
    assert (frames == frames[0]).all()


def test_incomplete_attributes_cannot_be_rendered() -> None:
    with pytest.raises(BadInputError, match="motion"):
        next(render_frames(WorldAttributes("black", "red", "circle", "large"), 64, 64, 8, 1, 0))


def test_attributes_reject_unknown_values_and_same_colours() -> None:
    with pytest.raises(ValueError, match="shape"):
        WorldAttributes(shape="star")
    with pytest.raises(ValueError, match="background's colour"):
        WorldAttributes(background="white", colour="white")


def test_sampled_attributes_cover_every_value_and_never_hide_the_object() -> None:
    rng = np.random.default_rng(0)
    samples = [sample_attributes(rng) for _ in range(400)]
    assert all(a.is_complete and a.colour != a.background for a in samples)
    for name, values in ATTRIBUTE_VALUES.items():
        assert {getattr(a, name) for a in samples} == set(values)


def test_emphasis_sets_chosen_values_probabilities_and_the_rest_share_alike() -> None:
    rng = np.random.default_rng(1)
    emphasis = {"background": {"gray": 0.6}, "size": {"small": 0.9}, "colour": {"red": 0.3}}
    samples = [sample_attributes(rng, emphasis) for _ in range(4000)]
    assert all(a.is_complete and a.colour != a.background for a in samples)
    share = {name: Counter(getattr(a, name) for a in samples) for name in ATTRIBUTE_VALUES}
    assert share["background"]["gray"] / 4000 == pytest.approx(0.6, abs=0.03)
    for other in ("black", "navy", "white"):
        assert share["background"][other] / 4000 == pytest.approx(0.4 / 3, abs=0.02)
    assert share["size"]["small"] / 4000 == pytest.approx(0.9, abs=0.02)
    assert share["colour"]["red"] / 4000 == pytest.approx(0.3, abs=0.03)
    assert set(share["shape"]) == set(ATTRIBUTE_VALUES["shape"])  # not named: uniform
    assert min(share["shape"].values()) / 4000 > 0.28
    # No emphasis draws exactly what every run before it drew.
    plain, empty = np.random.default_rng(2), np.random.default_rng(2)
    assert [sample_attributes(plain) for _ in range(50)] == [
        sample_attributes(empty, {}) for _ in range(50)
    ]


@pytest.mark.parametrize(
    ("emphasis", "message"),
    [
        ({"texture": {"smooth": 0.5}}, "no attribute"),
        ({"shape": {"star": 0.5}}, "no value"),
        ({"size": {"small": 1.5}}, "probability in"),
        ({"background": {"gray": 0.7, "navy": 0.7}}, "add up"),
    ],
)
def test_emphasis_that_cannot_be_drawn_is_refused(emphasis, message) -> None:
    with pytest.raises(ValueError, match=message):
        sample_attributes(np.random.default_rng(0), emphasis)
