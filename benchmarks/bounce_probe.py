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
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from opening_probe import probe_arguments, publish

from soravid.config import resolve_preset
from soravid.pipeline import GenerationRequest, Pipeline
from soravid.world import judge_frames, parse_caption, random_caption, sample_attributes


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


def main() -> None:
    parser = probe_arguments(__doc__.splitlines()[0], n=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--motion", default="bouncing")
    args = parser.parse_args()
    pipeline = Pipeline.load(args.model, device="cpu")
    report = bounce_report(
        pipeline, args.model, args.preset, args.n, args.seed, args.seconds, args.motion
    )
    publish(report, args.out)


if __name__ == "__main__":
    main()
