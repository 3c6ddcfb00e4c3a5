"""Where generation fails: judge clips denoised from real latents noised to a flow time.

A rendered clip is encoded, noised to flow time t (1 = pure noise) and sampled back to t = 0
with the model's own sampler and caption, then decoded and judged. From t = 1 this is plain
generation; from lower t the clip's layout (where the object is) survives in the noisy latent,
so the model only has to finish it. A model that passes from t = 0.5 but not from t = 1 can
draw, colour and move an object it is given, but has not learned to place one from noise.
A model that opens clips with `first_frames` alone is probed the same way: those frames
first, then the rest of the window with them as context.

    python benchmarks/denoise_probe.py soravid/weights/shapes.safetensors --n 10
    python benchmarks/denoise_probe.py runs/shapes/model.safetensors --times 1.0 0.9 0.8 0.5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from soravid.flow import denoise, interpolate, make_noise, time_schedule
from soravid.pipeline import from_uint8_frames, prompt_velocity, split_guidance, to_uint8_frames
from soravid.weights import load_model
from soravid.world import (
    canonical_caption,
    judge_frames,
    render_clip,
    sample_attributes,
    start_position,
)


def schedule_from(start: float, steps: int, shift: float) -> torch.Tensor:
    """The model's schedule cut to the times below `start`, with `start` itself first."""
    full = time_schedule(steps, shift)
    return torch.cat([torch.tensor([start]), full[full < start - 1e-6]])


@torch.no_grad()
def probe(
    model,
    clip: np.ndarray,
    caption: str,
    start: float,
    steps: int,
    guidance: float,
    seed: int,
    centre: tuple[float, float],
) -> np.ndarray:
    """(T, H, W, 3) uint8 -> the same, noised in latent space to `start` and denoised; a model
    with placement is told `centre`, where the clip's object starts."""
    latent = model.autoencoder.encode(from_uint8_frames(clip))  # (1, C, Tl, h, w)
    noise = make_noise(tuple(latent.shape), seed)
    noisy = interpolate(latent, noise, start)
    one_pass, two_pass = split_guidance(model, guidance)
    text = model.encode_text([caption, ""] if two_pass != 1.0 else [caption])
    schedule = schedule_from(start, steps, model.config.schedule_shift)
    # As generation does: a model with first_frames makes those alone, then the rest of the
    # window with them as context.
    first = model.config.first_frames
    placement = model.placement(torch.tensor([centre]), latent.shape[3:], first or latent.shape[2])
    if first:
        velocity = prompt_velocity(model, text, guidance=one_pass, placement=placement)
        opening = denoise(velocity, noisy[:, :, :first], None, 0, schedule, guidance=two_pass)
        context_time = model.config.context_time
        continuing = prompt_velocity(model, text, first, one_pass)
        sampled = denoise(
            continuing,
            noisy,
            opening,
            first,
            schedule,
            guidance=two_pass,
            context_time=context_time,
        )
    else:
        velocity = prompt_velocity(model, text, guidance=one_pass, placement=placement)
        sampled = denoise(velocity, noisy, None, 0, schedule, guidance=two_pass)
    return to_uint8_frames(model.autoencoder.decode(sampled))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a .safetensors model")
    parser.add_argument("--n", type=int, default=10, help="clips per flow time")
    parser.add_argument("--times", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.65, 0.5])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="96x64", help="WxH canvas")
    parser.add_argument("--fps", type=int, default=8)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    model = load_model(args.model).eval()
    frames = model.autoencoder.pixel_frames(model.config.window_frames)
    passed: dict[float, list[dict[str, bool]]] = {start: [] for start in args.times}
    for index in range(args.n):
        rng = np.random.default_rng([args.seed, index])
        attrs = sample_attributes(rng)
        clip = render_clip(attrs, width, height, args.fps, frames / args.fps, args.seed + index)
        centre = start_position(attrs, width, height, args.seed + index)
        for start in args.times:
            video = probe(
                model,
                clip,
                canonical_caption(attrs),
                start,
                args.steps,
                args.guidance,
                args.seed + index,
                centre,
            )
            passed[start].append(judge_frames(list(video), args.fps, len(video), attrs)[0].checks)
    table = {
        f"t={start:g}": {name: float(np.mean([c[name] for c in checks])) for name in checks[0]}
        | {"all": float(np.mean([all(c.values()) for c in checks]))}
        for start, checks in passed.items()
    }
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
