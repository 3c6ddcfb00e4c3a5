"""What compiling the DiT (DiTStage.compile) does to the training step rate on this machine.

Runs the trainer itself twice on a fine-tuning copy of the embedded model, plain and compiled,
on one shape (32 windows of the 96x64 canvas, no openings), and prints the first step's time
(the compile, and filling the window pool) and the rate from step 10 to the last.

    python benchmarks/compile_speed.py                # the embedded recipe, 40 steps
    python benchmarks/compile_speed.py --steps 100

The recipe's model must be the embedded model's kind (its weights are the starting point); the
stages after the DiT's are cut to what the model needs, and only the DiT stage is timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from recipe_probe import probe_recipe, seed_run
from train_step import AFTER_DIT

from soravid.training.recipes import EMBEDDED_RECIPE, get_recipe
from soravid.training.trainer import TrainEvent, train
from soravid.weights import embedded_model_path


def one_shape(recipe_name: str) -> list[str]:
    """Changes that leave the DiT stage on one canvas: the later stages off (an opening DiT's
    model needs its stage, so one step of it) and their canvas weights, one per canvas, cleared
    with the canvases."""
    opening_steps = min(1, get_recipe(recipe_name).opening.steps)
    return [
        "canvases=[[96,64]]",
        "dit.image_prob=0",
        "dit.canvas_weights=null",
        *(f"{stage}.steps=0" for stage in AFTER_DIT if stage != "opening"),
        f"opening.steps={opening_steps}",
        *(f"{stage}.canvas_weights=null" for stage in AFTER_DIT if stage != "distill"),
    ]


def step_rate(recipe_name: str, steps: int, compiled: bool) -> tuple[float, float]:
    """(seconds to the first step's end, steps per second from step 10 to the last)."""
    changes = [f"dit.compile={compiled}", "checkpoint_every=1000000", *one_shape(recipe_name)]
    recipe = probe_recipe(recipe_name, steps, changes)
    marks: dict[int, float] = {}

    def mark(event: TrainEvent) -> None:
        if event.stage == "dit":
            marks[event.step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as folder:
        seed_run(recipe, embedded_model_path(), Path(folder), whole=True)
        start = time.perf_counter()
        train(recipe, Path(folder), resume=True, on_progress=mark)
    return marks[1] - start, (steps - 10) / (marks[steps] - marks[10])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=EMBEDDED_RECIPE)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    if args.steps <= 10:
        parser.error("--steps must be above 10")
    for compiled in (False, True):
        first, rate = step_rate(args.recipe, args.steps, compiled)
        print(f"compile={compiled}: first step {first:.1f} s, steps 10-{args.steps}: {rate:.2f}/s")


if __name__ == "__main__":
    main()
