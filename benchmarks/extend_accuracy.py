"""How well `soravid extend` keeps a clip going (goal: every attribute kept in at least 90% of
continuations, at the model's canvas and at other sizes and frame rates).

    python benchmarks/extend_accuracy.py --model run/model.safetensors [--n 24] [--seconds 5]

Renders shapes-world clips of random attributes on each canvas of CASES in turn, extends each
with a paraphrased caption of them (only the continuation written), and judges the continuation
against the clip's attributes. The join is measured too: how far the object's centre moves
from the clip's last frame to the first new one, beside the step one frame of its motion makes
(a jump is a move well beyond that step).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections import deque
from pathlib import Path

import numpy as np

from soravid.evaluate import summarise
from soravid.extend import extend, plan_extension
from soravid.pipeline import Pipeline
from soravid.video import read_frames
from soravid.world import Verdict, judge_video, random_caption, sample_attributes
from soravid.world.judge import CHECKS
from soravid.world.measure import measure_frame
from soravid.world.render import save_clip
from soravid.world.spec import speed

CASES = [(96, 64, 8), (150, 100, 25), (64, 64, 12), (64, 112, 8)]  # width, height, fps


def extend_one(pipeline: Pipeline, index: int, args: argparse.Namespace, folder: Path):
    """Render clip `index`, extend it, judge the continuation; (verdict, jump px, step px)."""
    width, height, fps = CASES[index % len(CASES)]
    rng = np.random.default_rng([args.seed, index])
    attrs = sample_attributes(rng)
    source = folder / f"source-{index:03d}.mp4"
    save_clip(source, attrs, width, height, fps, args.source_seconds, seed=args.seed + index)
    sampler = {"steps": args.steps, "continue_from": args.continue_from}
    caption = random_caption(attrs, rng)
    extension = plan_extension(
        source, args.seconds, prompt=caption, seed=index, only_new=True, sampler=sampler
    )
    output = folder / f"continuation-{index:03d}.mp4"
    extend(pipeline, extension, output, overwrite=True)
    step = 0.0 if attrs.motion == "still" else speed(width, height) / fps
    return judge_video(output, attrs), join_jump(source, output), step


def join_jump(source: Path, continuation: Path) -> float:
    """Pixels the object's centre moves from the clip's last frame to the continuation's first,
    on the torus (objects wrap around the edges); nan where either shows no object."""
    last = deque(read_frames(source), maxlen=1)[0]
    first = next(iter(read_frames(continuation)))
    before, after = measure_frame(last).centre, measure_frame(first).centre
    if before is None or after is None:
        return math.nan
    height, width = last.shape[:2]
    dx = (after[0] - before[0] + width / 2) % width - width / 2
    dy = (after[1] - before[1] + height / 2) % height - height / 2
    return math.hypot(dx, dy)


def report(results: list[tuple[Verdict, float, float]]) -> None:
    print(f"{'canvas':>14} {'clips':>5} {'all kept':>8} " + " ".join(f"{c:>10}" for c in CHECKS))
    for case in range(len(CASES)):
        _report_row(_canvas_name(CASES[case]), results[case :: len(CASES)])
    _report_row("all", results)
    jumps = np.array([jump - step for _, jump, step in results])
    print(
        f"join: centre moves {np.nanmedian(jumps):+.2f} px beyond one frame's step (median), "
        f"{np.nanpercentile(jumps, 90):+.2f} px (90th percentile), "
        f"{int(np.isnan(jumps).sum())} joins without an object on one side"
    )


def _report_row(name: str, results: list[tuple[Verdict, float, float]]) -> None:
    if not results:
        return
    summary = summarise([verdict for verdict, _, _ in results])
    accuracy = " ".join(f"{summary['accuracy'][check]:>10.0%}" for check in CHECKS)
    print(f"{name:>14} {summary['clips']:>5} {summary['every_window']:>8.0%} {accuracy}")


def _canvas_name(case: tuple[int, int, int]) -> str:
    return f"{case[0]}x{case[1]}@{case[2]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded", help="'embedded' or a .safetensors file")
    parser.add_argument("--n", type=int, default=24, help="clips, spread over CASES")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds added to each")
    parser.add_argument("--source-seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (preset's)")
    parser.add_argument(
        "--continue-from", type=float, default=None, help="sampler.continue_from (extend's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out-dir", type=Path, default=None, help="keep the clips here")
    args = parser.parse_args()
    pipeline = Pipeline.load(args.model, args.device)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out_dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        report([extend_one(pipeline, index, args, folder) for index in range(args.n)])


if __name__ == "__main__":
    main()
