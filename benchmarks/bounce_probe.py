"""Bouncing alone: how often a model turns at the walls.

A bouncing object must stay whole inside the canvas, its velocity components reversing at the
edges; a DiT with only rotary (relative) positions cannot tell where the edges are (DiT
edge_distance). For n seeded random paraphrased captions with the motion set to bouncing
(attributes and wording drawn as `soravid eval` draws them), this generates clips through the
pipeline at a preset and judges every 5-s window: the share of clips whose every window moves
as a bounce, of windows that do, and how far across an edge the object was seen (a bounce
never crosses one). Straight motions as a control with --motion.

    python benchmarks/bounce_probe.py --n 20
    python benchmarks/bounce_probe.py --model runs/shapes-walls/model.safetensors --n 20
    python benchmarks/bounce_probe.py --motion "moving right" --n 20
    python benchmarks/bounce_probe.py --true-context --n 40

With --true-context it asks the model alone, without the sampler's guess or its own frames:
rendered 96x64 bouncing clips are encoded, and from three starts one true latent frame is
given as context and three are made from noise (8 steps, guidance 2); the 12 frames made are
judged, apart for windows where the rendered object touches a wall and where it does not.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from opening_probe import probe_arguments, publish

from soravid.config import resolve_preset
from soravid.flow import denoise, make_noise, time_schedule
from soravid.pipeline import (
    GenerationRequest,
    Pipeline,
    from_uint8_frames,
    prompt_velocity,
    to_uint8_frames,
)
from soravid.world import (
    canonical_caption,
    judge_frames,
    parse_caption,
    random_caption,
    render_clip,
    sample_attributes,
)
from soravid.world.judge import judge_window
from soravid.world.measure import measure_frame
from soravid.world.render import start_trajectory

CANVAS, FPS = (96, 64), 8
STARTS = (1, 4, 7)  # latent frames given as context; each window makes the next three


def bounce_report(
    pipeline: Pipeline,
    model: str,
    preset_name: str = "default",
    n: int = 20,
    seed: int = 0,
    seconds: float = 5.0,
    motion: str = "bouncing",
) -> dict:
    """The share of clips whose every window shows `motion`, of windows that do, and the
    median of how far across an edge each window saw the object."""
    preset = resolve_preset(preset_name, seconds=seconds, model=model)
    clips, windows, across = [], [], []
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        attributes = replace(sample_attributes(rng), motion=motion)
        caption = random_caption(attributes, rng, paraphrase=True)
        frames = list(pipeline.frames(GenerationRequest(caption, seed + index, preset)))
        verdicts = judge_frames(frames, preset.fps, len(frames), parse_caption(caption).attributes)
        moved = [verdict.checks["motion"] for verdict in verdicts]
        clips.append(all(moved))
        windows += moved
        across += [verdict.values["across_edge_px"] for verdict in verdicts]
    return {
        "model": pipeline.model_id,
        "preset": preset_name,
        "motion": motion,
        "n": n,
        "seconds": seconds,
        "clips_every_window": float(np.mean(clips)),
        "windows": float(np.mean(windows)),
        "across_edge_px_median": float(np.median(across)),
    }


@torch.inference_mode()
def turns_with_true_context(pipeline: Pipeline, n: int = 40, seed: int = 0) -> dict:
    """Windows made from one true context frame of rendered bouncing clips, right in motion:
    those whose rendered object touches a wall in the window, and the others."""
    model, (width, height) = pipeline.model, CANVAS
    schedule = time_schedule(8, model.config.schedule_shift)
    right = {"wall": [], "no_wall": []}
    for index in range(n):
        attributes = replace(
            sample_attributes(np.random.default_rng([seed, index])), motion="bouncing"
        )
        clip = render_clip(attributes, width, height, FPS, 5.125, seed + index)  # 11 latent frames
        trajectory = start_trajectory(
            attributes, width, height, np.random.default_rng(seed + index)
        )
        centres = np.array([trajectory.position(frame / FPS) for frame in range(len(clip))])
        latent = model.autoencoder.encode(from_uint8_frames(clip).to(pipeline.device))
        text = model.encode_text([canonical_caption(attributes), ""])
        velocity = prompt_velocity(model, text, context_frames=1)
        for start in STARTS:
            truth = latent[:, :, start : start + 4]
            first, last = 1 + 4 * (start - 1), 1 + 4 * (start + 3)  # its frames
            steps = np.diff(centres[first:last], axis=0)
            turns = bool((np.sign(steps[1:]) != np.sign(steps[:-1])).any())
            noise = make_noise(tuple(truth.shape), 1000 * start + index).to(pipeline.device)
            made = denoise(velocity, noise, truth[:, :, :1], 1, schedule, 2.0, context_time=0.05)
            cache = model.autoencoder.decode_cache(latent[:, :, :start])
            frames = to_uint8_frames(model.autoencoder.decode(made.float(), cache))[4:]
            span = (0.0, len(frames) / FPS)
            window = judge_window([measure_frame(f) for f in frames], span, FPS, CANVAS, attributes)
            right["wall" if turns else "no_wall"].append(window.checks["motion"])
    return {
        "model": pipeline.model_id,
        "n": n,
        "seed": seed,
        "windows_at_a_wall": len(right["wall"]),
        "right_at_a_wall": float(np.mean(right["wall"])),
        "windows_away_from_walls": len(right["no_wall"]),
        "right_away_from_walls": float(np.mean(right["no_wall"])),
    }


def main() -> None:
    parser = probe_arguments(__doc__.splitlines()[0], n=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--motion", default="bouncing")
    parser.add_argument(
        "--true-context", action="store_true", help="the model alone, from rendered frames"
    )
    args = parser.parse_args()
    pipeline = Pipeline.load(args.model, device="cpu")
    if args.true_context:
        publish(turns_with_true_context(pipeline, args.n, args.seed), args.out)
        return
    report = bounce_report(
        pipeline, args.model, args.preset, args.n, args.seed, args.seconds, args.motion
    )
    publish(report, args.out)


if __name__ == "__main__":
    main()
