"""The last motion of a clip, read from its latent frames and carried on."""

from __future__ import annotations

import torch

from soravid.motion import carry, extrapolate, frame_shift, subject_only


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


def test_a_subject_across_the_edge_is_kept_whole() -> None:
    frame = torch.full((1, 4, 8, 12), 0.5)
    frame[:, :, 2:4, 10:12] = 3.0  # its left part, by the right edge
    frame[:, :, 2:4, 0:2] = 3.5  # its right part, by the left edge
    assert torch.equal(subject_only(frame), frame)
