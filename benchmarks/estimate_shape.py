"""How much softer the DiT's one-step estimates draw shapes than the encoder's own latents.

Generation's last sampling step (8 steps at shift 3) jumps from flow time 0.3 to 0 in one
guided step, and what the decoder then draws is that estimate: a mean over what the frames
might be. This renders windows of the world (13 frames at the default canvas, every shape,
size and motion in turn), encodes them, makes every latent frame after the first again from
each flow time given as the decoder stage's estimates are made (trainer.dit_estimate, guidance
2, the first frame as context), decodes them and measures every frame after the first by
SHAPES_WORLD.md's ratio of area to bounding box (contract_shape.py), beside the plain round
trip (time 0).

    python benchmarks/estimate_shape.py MODEL [--n 48] [--times 0.1,0.3,0.5]

Prints per flow time the share of windows whose median ratio names the right shape, and the
median ratio of each size and shape.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from contract_shape import RATIO, fill_ratio, nearest_shape

from soravid.pipeline import from_uint8_frames, to_uint8_frames
from soravid.training.recipes import DecoderStage
from soravid.training.trainer import dit_estimate
from soravid.weights import load_model
from soravid.world import WorldAttributes, canonical_caption, render_clip

MOTIONS = ["still", "moving right", "moving down", "bouncing"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--times", default="0.1,0.3,0.5", help="flow times, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = load_model(args.model).eval()
    times = [0.0] + [float(t) for t in args.times.split(",")]
    frames = model.autoencoder.pixel_frames(model.config.window_frames)
    rng = np.random.default_rng(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    shapes, sizes = list(RATIO), ["small", "large"]
    ratios: dict[float, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for index in range(args.n):
        background = str(rng.choice(["black", "gray", "navy", "white"]))
        colour = str(rng.choice(["red", "green", "blue", "yellow", "magenta", "cyan"]))
        shape, size = shapes[index % 3], sizes[index // 3 % 2]
        attrs = WorldAttributes(background, colour, shape, size, MOTIONS[index // 6 % 4])
        clip = render_clip(attrs, 96, 64, 8, frames / 8, int(rng.integers(2**31)))[:frames]
        with torch.no_grad():
            latent = model.autoencoder.encode(from_uint8_frames(clip))  # (1, C, T, h, w)
            noise = torch.randn(latent.shape, generator=generator)
            for time in times:
                estimate = latent
                if time:
                    stage = replace(DecoderStage(), estimate_time=time)
                    estimate = dit_estimate(model, latent, noise, [canonical_caption(attrs)], stage)
                decoded = to_uint8_frames(model.autoencoder.decode(estimate))
                judged = [fill_ratio(frame) for frame in decoded[1:]]  # after the context's
                judged = [r for r in judged if r is not None]
                if judged:
                    ratios[time][f"{size} {shape}"].append(float(np.median(judged)))
    report = {}
    for time, by_kind in ratios.items():
        windows = [(kind.split()[1], r) for kind, values in by_kind.items() for r in values]
        right = sum(nearest_shape(r) == shape for shape, r in windows)
        report[str(time)] = {
            "windows": len(windows),
            "shape_by_ratio": round(right / len(windows), 3),
            "median_ratio": {k: round(float(np.median(v)), 3) for k, v in sorted(by_kind.items())},
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
