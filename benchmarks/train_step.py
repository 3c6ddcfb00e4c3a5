"""What a training step of a recipe costs on this machine, measured: the trainer itself runs
each of the autoencoder and DiT stages for a few steps, and this prints their step rate and
the accelerator's peak memory in each: over the steps after the first (training), and in the
first step, which also sets the stage up (the DiT's pool of encoded clips).

train_cost.py estimates the same from FLOPs counted on the meta device; this is the check of
those estimates on a real GPU (or the CPU, without memory). The rate is taken from step
`--skip` to the last, so the first steps (allocator warm-up, filling the DiT's window pool)
stay out of it; the time to the first step is printed apart.

    python benchmarks/train_step.py S B --steps 30
    python benchmarks/train_step.py shapes --steps 20 --json results.json

Under torchrun it measures the processes training together (DistributedDataParallel), each
on its micro-batch of `batch_size`, and rank 0 prints:

    torchrun --standalone --nproc-per-node 2 benchmarks/train_step.py shapes --set dit.batch_size=16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from recipe_probe import probe_recipe

from soravid.distributed import is_main, process_group, world_size
from soravid.training.recipes import TrainRecipe, get_recipe
from soravid.training.trainer import STAGES, TrainEvent, train, training_device

MEASURED_STAGES = ("autoencoder", "dit")
AFTER_DIT = STAGES[STAGES.index("dit") + 1 : STAGES.index("done")]


def cut_recipe(name: str, steps: int, changes: list[str] = ()) -> TrainRecipe:
    """The named recipe with its autoencoder and DiT stages cut to `steps`, and the stages
    after them that it has (a model may need them) to no more; then `changes` (dot-list)."""
    full = get_recipe(name).to_dict()
    later = [f"{stage}.steps={min(steps, full[stage]['steps'])}" for stage in AFTER_DIT]
    return probe_recipe(
        name, steps, [f"autoencoder.steps={steps}", "checkpoint_every=1000000", *later, *changes]
    )


def measure(name: str, steps: int, skip: int, changes: list[str] = ()) -> dict:
    recipe = cut_recipe(name, steps, changes)
    device = training_device()
    marks: dict[str, dict[int, float]] = {}
    peaks: dict[str, int] = {}
    stage_start: dict[str, float] = {}
    last_end = time.perf_counter()

    def mark(event: TrainEvent) -> None:
        nonlocal last_end
        if device.type == "cuda" and event.step in (1, event.steps):
            # The first step's peak holds the stage's set-up (encoding the DiT's pool of
            # clips); the later steps' is what training itself takes.
            torch.cuda.synchronize()
            key = "first" if event.step == 1 else "steps"
            peaks[f"{event.stage} {key}"] = torch.cuda.max_memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        now = time.perf_counter()
        stage_start.setdefault(event.stage, last_end)
        marks.setdefault(event.stage, {})[event.step] = now
        if event.step == event.steps:
            last_end = now

    with tempfile.TemporaryDirectory() as folder:
        last_end = time.perf_counter()
        train(recipe, Path(folder), on_progress=mark)
    if not is_main():
        return {}  # only rank 0 is told of the steps
    row = {
        "recipe": name,
        "device": str(device),
        "processes": world_size(),
        "threads": torch.get_num_threads(),
        "steps": steps,
        "changes": list(changes),
    }
    for stage in MEASURED_STAGES:
        times = marks[stage]
        row[stage] = {
            "first_step_s": round(times[1] - stage_start[stage], 2),
            "step_ms": round(1000 * (times[steps] - times[skip]) / (steps - skip), 1),
            "first_step_peak_gib": gib(peaks.get(f"{stage} first")),
            "peak_memory_gib": gib(peaks.get(f"{stage} steps")),
        }
    return row


def print_row(row: dict) -> None:
    for stage in MEASURED_STAGES:
        figures = row[stage]
        memory, first = figures["peak_memory_gib"], figures["first_step_peak_gib"]
        print(
            f"{row['recipe']:8s} {stage:12s} {figures['step_ms']:8.1f} ms/step  "
            f"peak memory {'-' if memory is None else f'{memory:.2f} GiB'}  "
            f"first step {figures['first_step_s']:6.1f} s, "
            f"{'-' if first is None else f'{first:.2f} GiB'}  ({row['device']})",
            flush=True,
        )


def gib(size: int | None) -> float | None:
    return None if size is None else round(size / 2**30, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", default=["S", "B"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--skip", type=int, default=10, help="steps left out of the rate")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="recipe changes, dot-list (e.g. dit.compile=true)",
    )
    args = parser.parse_args()
    if not 0 < args.skip < args.steps:
        parser.error("--skip must be between 0 and --steps")
    rows = []
    with process_group():
        for name in args.recipes:
            row = measure(name, args.steps, args.skip, args.set)
            if not is_main():
                continue
            rows.append(row)
            print_row(row)
            if args.json is not None:
                args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
