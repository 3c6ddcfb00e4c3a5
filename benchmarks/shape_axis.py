"""Where the DiT's estimate of a small square sits between a square and a circle, at each noise
level: a measure of shape learning that needs no sampling and no judge.

For n small objects at random places, colours and backgrounds on the 96x64 canvas, frame 0 is
rendered once as a square and once as a circle at the same spot and encoded. Each latent is
noised to flow time t and the model, given its canonical caption and the placement map of the
object's true centre, estimates the clean latent (x0 = x_t - t v). That estimate is projected
onto the line from the circle's latent (0) to the square's (1): a model that has learnt the
shapes gives about 1 for the square's caption and 0 for the circle's at every t, and one that
draws a blob between them gives the same middling value for both. Also printed: how far
apart the two latents are, and the estimate's error, both as norms over the whole latent.

    python benchmarks/shape_axis.py
    python benchmarks/shape_axis.py --model runs/probe/model-ema.safetensors --out axis.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from opening_probe import publish

from soravid.flow import interpolate, make_noise
from soravid.models.placement import random_centre
from soravid.pipeline import Pipeline, from_uint8_frames
from soravid.world import canonical_caption
from soravid.world.render import draw_object
from soravid.world.spec import (
    BACKGROUND_COLOURS,
    OBJECT_COLOURS,
    PALETTE,
    WorldAttributes,
    object_extent,
)

CANVAS = (96, 64)
SHAPES = ("circle", "square")  # the line's ends, 0 and 1
TIMES = (0.3, 0.5, 0.7, 0.85, 0.95)


def small_objects(n: int, seed: int) -> tuple[list[dict[str, WorldAttributes]], list]:
    """n draws of colour, background and centre, each as a small circle and a small square."""
    rng = np.random.default_rng(seed)
    width, height = CANVAS
    margin = object_extent("small", width, height) / min(width, height)  # whole, one side away
    pairs, centres = [], []
    for _ in range(n):
        background = str(rng.choice(BACKGROUND_COLOURS))
        colour = str(rng.choice([c for c in OBJECT_COLOURS if c != background]))
        pairs.append(
            {
                shape: WorldAttributes(
                    size="small", colour=colour, shape=shape, motion="still", background=background
                )
                for shape in SHAPES
            }
        )
        centres.append(random_centre(rng, width, height, margin))
    return pairs, centres


def first_frame(attributes: WorldAttributes, centre: tuple[float, float]) -> np.ndarray:
    width, height = CANVAS
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[...] = PALETTE[attributes.background]
    draw_object(frame, attributes, centre, object_extent(attributes.size, width, height))
    return frame


@torch.inference_mode()
def shape_axis(pipeline: Pipeline, n: int = 48, seed: int = 0) -> dict:
    model = pipeline.model
    pairs, centres = small_objects(n, seed)
    latents = {}  # shape -> (n, C, 1, h, w)
    for shape in SHAPES:
        frames = [
            first_frame(pair[shape], centre) for pair, centre in zip(pairs, centres, strict=True)
        ]
        video = torch.cat([from_uint8_frames(frame[None]) for frame in frames])
        latents[shape] = model.autoencoder.encode(video.to(pipeline.device)).float()
    line = (latents["square"] - latents["circle"]).flatten(1)  # (n, D)
    placement = model.placement(torch.tensor(centres), latents["square"].shape[3:], 1)
    report = {
        "model": pipeline.model_id,
        "n": n,
        "seed": seed,
        "square_circle_distance": round(float(line.norm(dim=1).median()), 3),
    }
    for shape in SHAPES:
        latent = latents[shape]
        text = model.encode_text([canonical_caption(pair[shape]) for pair in pairs])
        noise = make_noise(tuple(latent.shape), seed).to(latent.device)
        rows = []
        for t in TIMES:
            times = torch.full((n, 1), t, device=latent.device)
            noised = interpolate(latent, noise, times)
            estimate = noised - t * model.velocity(noised, times, text, 0, placement=placement)
            along = ((estimate - latents["circle"]).flatten(1) * line).sum(1) / line.pow(2).sum(1)
            error = (estimate - latent).flatten(1).norm(dim=1)
            rows.append(
                {
                    "t": t,
                    "position_median": round(float(along.median()), 3),
                    "error_median": round(float(error.median()), 3),
                }
            )
        report[f"{shape}_caption"] = rows
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded", help="embedded or a .safetensors file")
    parser.add_argument("--n", type=int, default=48, help="places, colours and backgrounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args()
    pipeline = Pipeline.load(args.model, device="cpu")
    publish(shape_axis(pipeline, args.n, args.seed), args.out)


if __name__ == "__main__":
    main()
