"""Wall time and peak memory of long clips against short ones (goal: time(60 s) at most 13 times
time(5 s), peak memory at most 1.2 times).

    python benchmarks/long_video.py [--model embedded] [--seconds 5 60 600] [--threads 2]

Each clip is generated in a fresh process, so its peak resident memory (ru_maxrss) is its own
(ffmpeg, a process of its own, is not counted: a child's ru_maxrss on Linux starts from its
parent's at fork, so it cannot be told apart). Time is the generation alone, model loading
apart. Beside each measurement stands what `soravid generate --dry-run` estimated for it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a big red ball bouncing on a black background"
TARGETS = {"time": 13.0, "peak": 1.2}  # long over short, at most
COLUMNS = [  # title, key, format
    ("seconds", "seconds", "g"),
    ("frames", "frames", "d"),
    ("chunks", "chunks", "d"),
    ("time s", "time_s", ".2f"),
    ("est. s", "estimated_seconds", ".2f"),
    ("peak MB", "peak_mb", ".0f"),
    ("est. MB", "estimated_peak_mb", ".0f"),
    ("load s", "load_s", ".2f"),
    ("total s", "total_s", ".2f"),
]


def measure(args: argparse.Namespace, seconds: float) -> dict:
    """Generate one clip in this process; what it took."""
    import torch

    from soravid.config import resolve_preset
    from soravid.pipeline import GenerationRequest, Pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    preset = resolve_preset(args.preset, seconds=seconds, model=args.model, steps=args.steps)
    start = time.perf_counter()
    pipeline = Pipeline.load(preset.model, args.device)
    loaded = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        request = GenerationRequest(PROMPT, 0, preset)
        result = pipeline.generate(request, Path(folder) / "clip.mp4")
    return {
        "seconds": seconds,
        "frames": result.frames,
        "load_s": loaded,
        "time_s": result.wall_time,
        "peak_mb": _peak_mb(),
    }


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes / KiB


def in_fresh_process(args: argparse.Namespace, seconds: float) -> dict:
    """measure() in a child process; total_s is that whole process, as a user would wait."""
    command = [sys.executable, __file__, "--one", str(seconds), *_shared_flags(args)]
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout) | {"total_s": time.perf_counter() - start}


def dry_run_estimate(args: argparse.Namespace, seconds: float) -> dict:
    """What `soravid generate --dry-run` says the clip will take (a process of its own too)."""
    command = [sys.executable, "-m", "soravid", "generate", PROMPT, "--dry-run", "--json"]
    command += ["--seconds", str(seconds), "--preset", args.preset, "--model", args.model]
    command += ["--device", args.device, "-o", str(Path(tempfile.gettempdir()) / "plan.mp4")]
    command += ["--steps", str(args.steps)] if args.steps else []
    threads = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}
    environment = os.environ | threads
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=environment)
    return json.loads(done.stdout)


def _shared_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--model", args.model, "--preset", args.preset, "--device", args.device]
    flags += ["--threads", str(args.threads)] if args.threads else []
    return flags + (["--steps", str(args.steps)] if args.steps else [])


def report(rows: list[dict]) -> None:
    print(" ".join(f"{title:>9}" for title, _, _ in COLUMNS))
    for row in rows:
        print(" ".join(f"{row[key]:>9{style}}" for _, key, style in COLUMNS))
    short = rows[0]
    for row in rows[1:]:
        ratios = {key: row[key] / short[key] for key in ("time_s", "total_s", "peak_mb")}
        print(
            f"{row['seconds']:g} s over {short['seconds']:g} s: generation time "
            f"x{ratios['time_s']:.2f}, whole command x{ratios['total_s']:.2f} (target <= "
            f"{TARGETS['time']:g} for 60 over 5); peak memory x{ratios['peak_mb']:.3f} "
            f"(target <= {TARGETS['peak']:g})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded", help="'embedded' or a .safetensors file")
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 60.0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (preset's)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (torch's)")
    parser.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:  # a child: measure one clip and print it as JSON
        print(json.dumps(measure(args, args.one)))
        return
    rows = []
    for seconds in sorted(args.seconds):
        row = dry_run_estimate(args, seconds) | in_fresh_process(args, seconds)
        print(f"measured {seconds:g} s", file=sys.stderr)
        rows.append(row)
    report(rows)


if __name__ == "__main__":
    main()
