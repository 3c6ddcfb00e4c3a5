"""What compiling the DiT (DiTStage.compile) does to the training step rate on this machine.

Runs the trainer itself twice on a fine-tuning copy of the embedded model, plain and compiled,
on one shape (32 windows of the 96x64 canvas, no openings), and prints the first step's time
(the compile, and filling the window pool) and the rate from step 10 to the last.

    python benchmarks/compile_speed.py                # shapes-walls-compiled, 40 steps
    python benchmarks/compile_speed.py --steps 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from recipe_probe import probe_recipe, seed_run

from soravid.training.trainer import TrainEvent, train
from soravid.weights import embedded_model_path

ONE_SHAPE = ["canvases=[[96,64]]", "dit.image_prob=0", "dit.canvas_weights=null"]


def step_rate(recipe_name: str, steps: int, compiled: bool) -> tuple[float, float]:
    """(seconds to the first step's end, steps per second from step 10 to the last)."""
    changes = [f"dit.compile={compiled}", "checkpoint_every=1000000", *ONE_SHAPE]
    recipe = probe_recipe(recipe_name, steps, changes)
    marks: dict[int, float] = {}

    def mark(event: TrainEvent) -> None:
        marks[event.step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as folder:
        seed_run(recipe, embedded_model_path(), Path(folder), whole=True)
        start = time.perf_counter()
        train(recipe, Path(folder), resume=True, on_progress=mark)
    return marks[1] - start, (steps - 10) / (marks[steps] - marks[10])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="shapes-walls-compiled")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    if args.steps <= 10:
        parser.error("--steps must be above 10")
    for compiled in (False, True):
        first, rate = step_rate(args.recipe, args.steps, compiled)
        print(f"compile={compiled}: first step {first:.1f} s, steps 10-{args.steps}: {rate:.2f}/s")


if __name__ == "__main__":
    main()
