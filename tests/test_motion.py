"""The last motion of a clip, read from its latent frames and carried on."""

from __future__ import annotations

import torch

from soravid.motion import (
    carry,
    extrapolate,
    frame_shift,
    motion_speed,
    rigidity,
    subject_only,
)


def latent_frame(batch: int = 2, background: float = 0.5) -> torch.Tensor:
    """(B, 4, 8, 12) frames: a flat background and a 2x3 patch of another value."""
    frame = torch.full((batch, 4, 8, 12), background)
    frame[:, :, 2:4, 3:6] = torch.randn(batch, 4, 1, 1) + 3.0
    return frame


def test_the_shift_between_two_frames_is_found_whatever_the_background() -> None:
    before = latent_frame()
    after = torch.roll(before, (1, -2), dims=(2, 3))
    after[1] += 0.7  # another background level: it is left out
    assert frame_shift(before, after).tolist() == [[1, -2], [1, -2]]
    assert frame_shift(before, before).tolist() == [[0, 0], [0, 0]]


def test_shifts_past_half_the_grid_go_the_short_way_round() -> None:
    before = latent_frame(1)
    assert frame_shift(before, torch.roll(before, -3, dims=3)).tolist() == [[0, -3]]
    assert frame_shift(before, torch.roll(before, 3, dims=2)).tolist() == [[3, 0]]


def test_the_last_frame_is_carried_on_by_its_own_motion() -> None:
    first = latent_frame()
    history = torch.stack([first, torch.roll(first, 2, dims=3)], dim=2)  # (B, C, 2, h, w)
    future = extrapolate(history, 3)
    assert future.shape == (2, 4, 3, 8, 12)
    for k in range(3):
        assert torch.equal(future[:, :, k], torch.roll(first, 2 * (k + 2), dims=3))


def test_a_reference_frame_is_carried_to_where_the_last_frame_has_the_subject() -> None:
    reference = latent_frame()
    before = torch.roll(reference, (1, 2), dims=(2, 3))
    last = torch.roll(reference, (1, 4), dims=(2, 3))
    last[:, :, 6:8, 8:10] += 2.0  # an artefact the last frame made: it is not carried on
    future = extrapolate(torch.stack([before, last], dim=2), 2, carry(reference, last))
    for k in range(2):
        assert torch.equal(future[:, :, k], torch.roll(reference, (1, 4 + 2 * (k + 1)), (2, 3)))


def test_carry_moves_the_reference_to_where_the_subject_is() -> None:
    reference = latent_frame()
    last = torch.roll(reference, (-2, 5), dims=(2, 3))
    last[:, :, 0, 0] += 1.5  # a speck of the last frame's own: not carried
    assert torch.equal(carry(reference, last), torch.roll(reference, (-2, 5), dims=(2, 3)))


def test_subject_only_clears_all_but_the_subject_and_its_edge() -> None:
    frame = latent_frame(1)  # background 0.5, the subject at rows 2-3, columns 3-5
    frame[:, :, 6, 10] = 2.0  # a weaker stray mark elsewhere
    cleared = subject_only(frame)
    assert torch.equal(cleared[:, :, 1:5, 2:7], frame[:, :, 1:5, 2:7])  # subject and its edge
    outside = torch.ones(8, 12, dtype=torch.bool)
    outside[1:5, 2:7] = False
    assert torch.all(cleared[0][:, outside] == 0.5)


def test_a_subject_touching_an_edge_keeps_nothing_at_the_opposite_one() -> None:
    frame = torch.full((1, 4, 8, 12), 0.5)
    frame[:, :, 2:4, 0:2] = 3.0  # the subject, touching the left edge
    frame[:, :, 1:5, 11] = 0.6  # a faint column by the right edge: not its edge, a stray
    cleared = subject_only(frame)
    assert torch.equal(cleared[:, :, 1:5, 0:3], frame[:, :, 1:5, 0:3])  # subject and its edge
    assert torch.all(cleared[:, :, :, 11] == 0.5)


def test_a_subject_across_the_edge_is_kept_whole() -> None:
    frame = torch.full((1, 4, 8, 12), 0.5)
    frame[:, :, 2:4, 10:12] = 3.0  # its left part, by the right edge
    frame[:, :, 2:4, 0:2] = 3.5  # its right part, by the left edge
    assert torch.equal(subject_only(frame), frame)


def test_the_shift_is_found_to_a_fraction_of_a_cell() -> None:
    before = torch.zeros(1, 1, 16, 16)
    before[0, 0, 6:9, 6:9] = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    halfway = (torch.roll(before, 1, dims=3) + torch.roll(before, 2, dims=3)) / 2
    dy, dx = frame_shift(before, halfway, sub_cell=True)[0].tolist()
    assert abs(dy) < 0.05 and 1.3 < dx < 1.7
    assert frame_shift(before, halfway).dtype == torch.long


def diagonal_history(frame: torch.Tensor, step: tuple[int, int], frames: int = 3) -> torch.Tensor:
    """(B, C, frames, h, w): `frame` arrived at by `step` a frame."""
    back = [torch.roll(frame, (-k * step[0], -k * step[1]), dims=(2, 3)) for k in range(frames)]
    return torch.stack(back[::-1], dim=2)


def test_a_diagonal_subject_turns_at_the_edges_at_the_clips_speed_and_stays_inside() -> None:
    frame = torch.full((1, 4, 8, 12), 0.5)
    frame[:, :, 5:7, 8:10] = 3.0  # rows 5-6 of 8, columns 8-9 of 12
    history = diagonal_history(frame, (1, 1))
    speed = motion_speed(history)
    assert torch.allclose(speed, torch.ones(1, 2))
    future = extrapolate(history, 4, speed=speed)
    # Down-right by one cell a frame, turning a cell short of the edges: the bottom edge is one
    # row away (it turns at once), the right two columns.
    for k, (dy, dx) in enumerate([(-1, 1), (-2, 0), (-3, -1), (-4, -2)]):
        assert torch.equal(future[:, :, k], torch.roll(frame, (dy, dx), dims=(2, 3)))
    wrapped = extrapolate(history, 4)
    assert torch.equal(wrapped[:, :, 1], torch.roll(frame, (2, 2), dims=(2, 3)))


def test_a_fractional_speed_is_kept_on_average_and_both_axes_share_it() -> None:
    frame = torch.full((1, 4, 16, 24), 0.5)
    frame[:, :, 6:8, 10:12] = 3.0
    history = diagonal_history(frame, (1, -1))
    future = extrapolate(history, 4, speed=torch.tensor([[1.0, 2.0]]))  # at 1.5 cells a frame
    for k, shift in enumerate([2, 3, 4, 6]):  # round(1.5 k)
        assert torch.equal(future[:, :, k], torch.roll(frame, (shift, -shift), dims=(2, 3)))


def test_straight_motions_and_subjects_across_an_edge_wrap_round_whatever_the_speed() -> None:
    frame = latent_frame()
    history = diagonal_history(frame, (0, 2))
    speed = motion_speed(history)
    assert speed[:, 0].eq(0).all() and torch.allclose(speed[:, 1], torch.full((2,), 2.0))
    assert torch.equal(extrapolate(history, 5, speed=speed), extrapolate(history, 5))
    across = torch.full((1, 4, 8, 12), 0.5)
    across[:, :, 2:4, 11] = 3.0
    across[:, :, 2:4, 0] = 3.0  # a subject across the left and right edges
    history = diagonal_history(across, (1, 1))
    assert torch.equal(extrapolate(history, 3, speed=torch.ones(1, 2)), extrapolate(history, 3))


def test_a_subject_that_stalled_along_an_axis_turns_away_from_the_nearer_edge() -> None:
    frame = torch.full((1, 4, 8, 12), 0.5)
    frame[:, :, 3:5, 0:2] = 3.0  # at the left edge, having come down-left; its last step (1, 0)
    history = torch.stack(
        [torch.roll(frame, (-2, 1), dims=(2, 3)), torch.roll(frame, (-1, 0), dims=(2, 3)), frame],
        dim=2,
    )
    future = extrapolate(history, 2, speed=torch.ones(1, 2))
    for k in range(2):
        assert torch.equal(future[:, :, k], torch.roll(frame, (k + 1, k + 1), dims=(2, 3)))
    # Without the clip's speed the lost component stays lost: it goes straight down.
    assert torch.equal(extrapolate(history, 1)[:, :, 0], torch.roll(frame, 1, dims=2))


def test_rigidity_is_one_for_a_shifted_subject_and_lower_where_it_breaks_up() -> None:
    frame = latent_frame(1)
    moved = torch.stack([frame, torch.roll(frame, (1, 2), dims=(2, 3))], dim=2)
    assert abs(rigidity(moved) - 1.0) < 1e-4
    broken = torch.roll(frame, (1, 2), dims=(2, 3))
    broken[:, :, :, 6:] = torch.roll(broken[:, :, :, 6:], 3, dims=2)  # half of it elsewhere
    broken[:, :, 6, 0] = 4.0  # and a stray mark
    assert rigidity(torch.stack([frame, broken], dim=2)) < 0.9
