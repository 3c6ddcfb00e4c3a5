"""Rectified flow: noise, training times, loss, schedule and the guided Euler sampler."""

from __future__ import annotations

import pytest
import torch

from soravid.flow import (
    denoise,
    flow_matching_loss,
    guided_steps,
    interpolate,
    make_noise,
    sample_flow_times,
    time_schedule,
)


def exact_velocity(x0: torch.Tensor):
    """The true velocity towards a single data point x0: v = (x_t - x0) / t."""
    return lambda x, t: (x - x0) / t[:, None, :, None, None]


def test_noise_is_bit_identical_by_seed() -> None:
    assert torch.equal(make_noise((2, 3, 4), seed=7), make_noise((2, 3, 4), seed=7))
    assert not torch.equal(make_noise((2, 3, 4), seed=7), make_noise((2, 3, 4), seed=8))


def test_interpolation_runs_from_data_at_zero_to_noise_at_one() -> None:
    x0, noise = torch.zeros(1, 2, 3, 2, 2), torch.ones(1, 2, 3, 2, 2)
    xt = interpolate(x0, noise, torch.tensor([[0.0, 0.25, 1.0]]))
    assert xt[0, :, 0].eq(0).all() and xt[0, :, 1].eq(0.25).all() and xt[0, :, 2].eq(1).all()


def test_flow_times_per_frame_or_per_clip() -> None:
    times = sample_flow_times(64, 5, torch.Generator().manual_seed(0))
    assert times.shape == (64, 5) and (times > 0).all() and (times < 1).all()
    assert times.std(dim=1).min() > 0  # diffusion forcing: frames differ
    shared = sample_flow_times(4, 5, torch.Generator().manual_seed(0), per_frame=False)
    assert (shared == shared[:, :1]).all()
    again = sample_flow_times(64, 5, torch.Generator().manual_seed(0))
    assert torch.equal(times, again)


def test_shifted_flow_times_reach_pure_noise() -> None:
    """Generation starts at t = 1: with shift 3, about 14% of training times lie above 0.95
    (1 - 0.95 / 1.1 of the uniform draws), against 5% unshifted."""
    generator = torch.Generator().manual_seed(0)
    shifted = sample_flow_times(20_000, 1, generator, shift=3.0)
    plain = sample_flow_times(20_000, 1, generator)
    assert abs((shifted > 0.95).float().mean().item() - (1 - 0.95 / 1.1)) < 0.01
    assert abs((plain > 0.95).float().mean().item() - 0.05) < 0.01


def test_loss_is_zero_for_the_true_velocity_and_masks_context_frames() -> None:
    x0, noise = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 3, 4, 2, 2)
    t = torch.rand(2, 4)
    assert flow_matching_loss(lambda x, tt: noise - x0, x0, noise, t) == 0

    def wrong_on_frame_zero(x: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        velocity = noise - x0
        velocity[:, :, 0] += 1.0
        return velocity

    assert flow_matching_loss(wrong_on_frame_zero, x0, noise, t) == pytest.approx(0.25)
    not_context = torch.tensor([[False, True, True, True]] * 2)
    assert flow_matching_loss(wrong_on_frame_zero, x0, noise, t, not_context) == 0


def test_loss_weight_counts_each_latent_pixel_as_given() -> None:
    x0, noise = torch.zeros(1, 2, 2, 2, 2), torch.zeros(1, 2, 2, 2, 2)
    t = torch.full((1, 2), 0.5)

    def wrong_on_one_pixel(x: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        velocity = torch.zeros_like(x)
        velocity[:, :, 1, 0, 0] = 2.0  # frame 1, top left: squared error 4 in each channel
        return velocity

    plain = flow_matching_loss(wrong_on_one_pixel, x0, noise, t)
    assert plain == pytest.approx(4 / 8)  # one pixel of 8 (2 frames of 2x2)
    weight = torch.ones(1, 1, 2, 2, 2)
    assert flow_matching_loss(wrong_on_one_pixel, x0, noise, t, weight=weight) == plain
    weight[:, :, 1, 0, 0] = 5.0
    assert flow_matching_loss(wrong_on_one_pixel, x0, noise, t, weight=weight) == pytest.approx(
        4 * 5 / 12
    )
    only_frame_one = torch.tensor([[False, True]])
    assert flow_matching_loss(
        wrong_on_one_pixel, x0, noise, t, only_frame_one, weight
    ) == pytest.approx(4 * 5 / 8)


def test_schedule_runs_from_one_to_zero_and_shift_favours_noise() -> None:
    plain, shifted = time_schedule(4), time_schedule(4, shift=3.0)
    assert plain.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert shifted[0] == 1 and shifted[-1] == 0 and (shifted.diff() < 0).all()
    assert (shifted[1:-1] > plain[1:-1]).all()
    with pytest.raises(ValueError):
        time_schedule(0)


def test_a_schedule_may_start_part_noised() -> None:
    """Frames that start at flow time 0.6 skip the steps above it, not squeeze them in."""
    assert time_schedule(4, start=0.6).tolist() == pytest.approx([0.6, 0.5, 0.25, 0.0])
    assert torch.equal(time_schedule(4, start=1.0), time_schedule(4))
    for start in (0.0, 1.5):
        with pytest.raises(ValueError, match="start"):
            time_schedule(4, start=start)


def test_euler_with_the_true_velocity_lands_on_the_data() -> None:
    x0, noise = torch.randn(1, 2, 3, 4, 4), torch.randn(1, 2, 3, 4, 4)
    steps = []
    out = denoise(
        exact_velocity(x0), noise, None, 0, time_schedule(5), on_step=lambda *s: steps.append(s)
    )
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=1e-5)
    assert steps == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_context_frames_are_held_clean_at_time_zero() -> None:
    context, noise = torch.randn(1, 2, 2, 4, 4), torch.randn(1, 2, 5, 4, 4)
    seen_times = []

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen_times.append(t.clone())
        assert torch.equal(x[:, :, :2], context)
        return torch.ones_like(x)

    out = denoise(model_fn, noise, context, 2, time_schedule(3))
    assert torch.equal(out[:, :, :2], context)
    torch.testing.assert_close(out[:, :, 2:], noise[:, :, 2:] - 1)
    assert all((t[:, :2] == 0).all() and (t[:, 2:] > 0).all() for t in seen_times)


def test_context_can_be_held_slightly_noised() -> None:
    context, noise = torch.zeros(1, 1, 1, 2, 2), torch.ones(1, 1, 3, 2, 2)
    out = denoise(
        lambda x, t: torch.zeros_like(x), noise, context, 1, time_schedule(2), 1.0, context_time=0.1
    )
    torch.testing.assert_close(out[:, :, 0], torch.full((1, 1, 2, 2), 0.1))


def test_wrong_context_length_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 2 context frames, got 1"):
        denoise(
            lambda x, t: x,
            torch.randn(1, 1, 3, 2, 2),
            torch.randn(1, 1, 1, 2, 2),
            2,
            time_schedule(2),
        )


def test_guidance_batches_conditional_and_unconditional_together() -> None:
    noise = torch.zeros(2, 1, 2, 2, 2)
    batches = []

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        batches.append(x.shape[0])
        conditional = torch.ones_like(x[:2])  # first half: the prompt
        return torch.cat([conditional, torch.zeros_like(x[2:])])

    out = denoise(model_fn, noise, None, 0, time_schedule(4), guidance=3.0)
    assert batches == [4] * 4
    torch.testing.assert_close(out, torch.full_like(noise, -3.0))  # x0 = noise - 3 * 1


def test_guidance_stops_below_guidance_until() -> None:
    """Steps starting above guidance_until are guided (batch doubled), the rest see x alone
    and take the prompt's velocity unchanged."""
    noise = torch.zeros(1, 1, 2, 2, 2)
    batches = []

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        batches.append(x.shape[0])
        return torch.cat([torch.ones_like(x[:1]), torch.zeros_like(x[1:])])

    schedule = time_schedule(4)  # 1, 0.75, 0.5, 0.25, 0
    assert guided_steps(schedule, 3.0, 0.5) == 2
    assert guided_steps(schedule, 1.0, 0.5) == 0
    out = denoise(model_fn, noise, None, 0, schedule, guidance=3.0, guidance_until=0.5)
    assert batches == [2, 2, 1, 1]
    # Two guided steps of size 0.25 move by 3 each, two plain ones by 1 each.
    torch.testing.assert_close(out, torch.full_like(noise, -0.25 * (3 + 3 + 1 + 1)))


def test_interpolate_takes_one_time_for_every_frame() -> None:
    x0, noise = torch.randn(2, 3, 4, 5, 5), torch.randn(2, 3, 4, 5, 5)
    assert torch.equal(interpolate(x0, noise, 0.3), interpolate(x0, noise, torch.full((2, 4), 0.3)))
