"""The first frame alone: how often a model opens a clip with the right object.

Every later chunk continues the first latent frame, so a clip is at best as right as its
opening. For seeded random paraphrased captions, drawn as `soravid eval` draws them (caption i
from (seed, i), noise seed seed + i), this makes only each clip's first frame, through the
pipeline (a placement model's map included), and judges it per the contract: one object,
background, colour, shape and size (motion needs more frames). 100 captions take seconds.

    python benchmarks/opening_probe.py --model soravid/weights/shapes.safetensors --n 100
    python benchmarks/opening_probe.py --model runs/shapes-placed/model.safetensors --out o.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from soravid.config import resolve_preset
from soravid.evaluate import eval_captions
from soravid.pipeline import GenerationRequest, Pipeline
from soravid.world import judge_frames, parse_caption

CHECKS = ("object", "background", "colour", "shape", "size")


def first_frames(
    pipeline: Pipeline,
    model: str,
    preset_name: str = "default",
    n: int = 100,
    seed: int = 0,
    steps: int | None = None,
    guidance: float | None = None,
) -> dict:
    """The report: each check's share of the n first frames, and of all checks at once; and
    the shape check's share by the caption's shape and size (small objects are the hard ones)."""
    fps = resolve_preset(preset_name).fps
    preset = resolve_preset(  # one frame
        preset_name, seconds=1 / fps, model=model, steps=steps, guidance=guidance
    )
    passed, shape_by_kind = [], defaultdict(list)
    for index, caption in enumerate(eval_captions(n, seed)):
        frames = list(pipeline.frames(GenerationRequest(caption, seed + index, preset)))
        expected = parse_caption(caption).attributes
        window = judge_frames(frames, fps, len(frames), expected)[0]
        passed.append({name: window.checks[name] for name in CHECKS})
        shape_by_kind[f"{expected.size} {expected.shape}"].append(window.checks["shape"])
    table = {name: float(np.mean([checks[name] for checks in passed])) for name in CHECKS}
    table["all"] = float(np.mean([all(checks.values()) for checks in passed]))
    by_kind = {
        kind: {"n": len(checks), "shape": round(float(np.mean(checks)), 3)}
        for kind, checks in sorted(shape_by_kind.items())
    }
    return {
        "model": pipeline.model_id,
        "preset": preset_name,
        "steps": preset.steps,
        "guidance": preset.guidance,
        "n": n,
        "first_frame": table,
        "shape_by_size_and_shape": by_kind,
    }


def probe_arguments(description: str, n: int) -> argparse.ArgumentParser:
    """The options every probe of generated clips takes: model, preset, n captions, seed, out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="embedded", help="embedded or a .safetensors file")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--n", type=int, default=n)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    return parser


def publish(report: dict, out: Path | None) -> None:
    """Print the report, and write it to `out` as well when given."""
    print(json.dumps(report, indent=2))
    if out:
        out.write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    parser = probe_arguments(__doc__.splitlines()[0], n=100)
    parser.add_argument("--steps", type=int, help="sampler steps (default: the preset's)")
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the preset's)")
    args = parser.parse_args()
    pipeline = Pipeline.load(args.model, device="cpu")
    report = first_frames(
        pipeline, args.model, args.preset, args.n, args.seed, args.steps, args.guidance
    )
    publish(report, args.out)


if __name__ == "__main__":
    main()
