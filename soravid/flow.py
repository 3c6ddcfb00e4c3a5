"""Rectified flow (flow matching): the training loss, the time schedule and an Euler sampler.

Conventions, stated once for all of soravid:
- tensors are (B, C, T, H, W); flow times are per frame, t (B, T) in [0, 1];
- t = 1 is pure noise, t = 0 is data: x_t = (1 - t) * x0 + t * noise;
- the model predicts the velocity v = noise - x0 = dx_t/dt, so sampling integrates from t = 1
  down to t = 0.
The model is any `model_fn(x_t, t) -> v`; nothing here knows what it is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

ModelFn = Callable[[Tensor, Tensor], Tensor]
StepCallback = Callable[[int, int], None]  # (step done, 1-based; steps in all)


def make_noise(shape: tuple[int, ...], seed: int) -> Tensor:
    """Standard normal noise from a seeded CPU generator: the same seed gives the same bits."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(shape, generator=generator)


def interpolate(x0: Tensor, noise: Tensor, t: Tensor | float) -> Tensor:
    """x_t = (1 - t) * x0 + t * noise, with t (B, T) broadcast over (B, C, T, H, W), or one
    time for every frame."""
    if not isinstance(t, Tensor):
        t = torch.full((x0.shape[0], x0.shape[2]), t, device=x0.device)
    t = t[:, None, :, None, None].to(x0.dtype)
    return (1 - t) * x0 + t * noise


def sample_flow_times(
    batch: int,
    frames: int,
    generator: torch.Generator,
    per_frame: bool = True,
    shift: float = 1.0,
) -> Tensor:
    """Training times (batch, frames): uniform, then shifted as the sampler's schedule is
    (shift > 1 favours noise), so training covers where sampling steps are, up to t = 1.

    Sampling starts from pure noise at t = 1, where only the caption tells the background,
    colour and shape. A logit-normal (SD3) almost never draws t > 0.95 (0.2%): a model trained
    on it read those from the faint image at t < 0.95 and learned to ignore the caption.
    per_frame draws an independent time for every frame (diffusion forcing); otherwise one
    time per clip is shared by its frames.
    """
    columns = frames if per_frame else 1
    uniform = torch.rand(batch, columns, generator=generator)
    return shift_times(uniform, shift).expand(batch, frames).contiguous()


def shift_times(t: Tensor, shift: float) -> Tensor:
    """t -> shift * t / (1 + (shift - 1) * t): 0 and 1 stay, shift > 1 moves the rest to 1."""
    return shift * t / (1 + (shift - 1) * t)


def flow_matching_loss(
    model_fn: ModelFn,
    x0: Tensor,
    noise: Tensor,
    t: Tensor,
    loss_mask: Tensor | None = None,
    weight: Tensor | None = None,
) -> Tensor:
    """Mean squared error of the predicted velocity, over the frames where loss_mask (B, T) is
    True (clean context frames are left out); over every frame when loss_mask is None.
    weight (B, 1, T, H, W), if given, says how much each latent pixel counts."""
    return velocity_loss(model_fn(interpolate(x0, noise, t), t), noise - x0, loss_mask, weight)


def velocity_loss(
    velocity: Tensor,
    target: Tensor,
    loss_mask: Tensor | None = None,
    weight: Tensor | None = None,
) -> Tensor:
    """Mean squared error of a velocity against its target, over the frames where loss_mask
    (B, T) is True; over every frame when loss_mask is None. A weighted mean where weight
    (B, 1, T, H, W) is given."""
    error = (velocity.float() - target.float()).pow(2)  # (B, C, T, H, W)
    if weight is None:
        weight = torch.ones_like(error[:, :1])
    if loss_mask is not None:
        weight = weight * loss_mask[:, None, :, None, None].to(weight.dtype)
    return (error * weight).sum() / (weight.sum() * error.shape[1]).clamp(min=1.0)


def time_schedule(steps: int, shift: float = 1.0, start: float = 1.0) -> Tensor:
    """steps + 1 times from 1 down to 0. shift > 1 spends more steps at high noise (SD3):
    t -> shift * t / (1 + (shift - 1) * t). With start < 1, for frames that begin part-noised,
    `start` and then the times below it: the steps above it are skipped, not squeezed in."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0 < start <= 1:
        raise ValueError(f"start must be above 0 and at most 1, got {start}")
    times = shift_times(torch.linspace(1.0, 0.0, steps + 1), shift)
    if start == 1.0:
        return times
    return torch.cat([torch.tensor([start]), times[times < start]])


def denoise(
    model_fn: ModelFn,
    noise: Tensor,
    context: Tensor | None,
    context_frames: int,
    schedule: Tensor,
    guidance: float = 1.0,
    on_step: StepCallback | None = None,
    context_time: float = 0.0,
    guidance_until: float = 0.0,
) -> Tensor:
    """Euler integration from noise (t=1) to data (t=0) along `schedule`.

    The first `context_frames` latent frames are given (`context`, B, C, Tc, H, W) and held
    fixed at flow time `context_time` (0: clean; a little above 0 noises them slightly, which
    keeps long videos from inheriting their own artefacts); the rest start as `noise`.
    With guidance != 1 the model sees the batch twice, [x; x]: it must condition the first half
    on the prompt and the second on the empty caption (the caller binds that conditioning), and
    v = v_uncond + guidance * (v_cond - v_uncond). Guidance applies only at steps starting above
    flow time `guidance_until`; the later ones see x alone, to be conditioned on the prompt.
    """
    fixed = _noised_context(noise, context, context_frames, context_time)
    x = _with_context(noise, fixed)
    steps = len(schedule) - 1
    for step in range(steps):
        t = _frame_times(x, context_frames, schedule[step], context_time)
        guided = step < guided_steps(schedule, guidance, guidance_until)
        velocity = _guided_velocity(model_fn, x, t, guidance if guided else 1.0)
        step_size = float(schedule[step + 1] - schedule[step])  # negative: time runs to 0
        x = _with_context(x + step_size * velocity, fixed)
        if on_step is not None:
            on_step(step + 1, steps)
    return x


def guided_steps(schedule: Tensor, guidance: float, guidance_until: float = 0.0) -> int:
    """How many of the schedule's steps (the first ones) use guidance: those starting at a time
    above guidance_until; none when guidance is 1."""
    if guidance == 1.0:
        return 0
    return int((schedule[:-1] > guidance_until).sum())


def _noised_context(
    noise: Tensor, context: Tensor | None, frames: int, time: float
) -> Tensor | None:
    if frames == 0:
        return None
    if context is None or context.shape[2] != frames:
        raise ValueError(f"denoise needs {frames} context frames, got {_frames_of(context)}")
    return interpolate(context.to(noise.dtype), noise[:, :, :frames], time)


def _frames_of(context: Tensor | None) -> int:
    return 0 if context is None else context.shape[2]


def _with_context(x: Tensor, fixed: Tensor | None) -> Tensor:
    if fixed is None:
        return x
    return torch.cat([fixed, x[:, :, fixed.shape[2] :]], dim=2)


def _frame_times(x: Tensor, context_frames: int, t: Tensor, context_time: float) -> Tensor:
    """(B, T): the current time for generated frames, context_time for the context."""
    times = torch.full((x.shape[0], x.shape[2]), float(t), device=x.device)
    times[:, :context_frames] = context_time
    return times


def _guided_velocity(model_fn: ModelFn, x: Tensor, t: Tensor, guidance: float) -> Tensor:
    if guidance == 1.0:
        return model_fn(x, t)
    conditional, unconditional = model_fn(torch.cat([x, x]), torch.cat([t, t])).chunk(2)
    return unconditional + guidance * (conditional - unconditional)
