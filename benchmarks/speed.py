"""How fast the embedded model makes video on this machine (goal: real-time factor >= 4 at the
default preset, 60 s of video in <= 15 s end to end, first frame <= 1 s after the model loads).

    python benchmarks/speed.py [--seconds 5 60] [--model embedded] [--preset default]
                               [--steps N] [--guidance G] [--out benchmarks/results/speed.json]

For every duration, two fresh processes:
- the CLI as a user runs it (`soravid generate PROMPT --seconds N -o clip.mp4 -q`): wall time
  with process start, import and model load included, and the real-time factor (seconds of
  video per second of wall time);
- the same clip through the library with each phase timed: model load, text encoding, DiT
  steps, decoding, MP4 encoding (writes to ffmpeg's pipe), the time from the model being loaded
  to the first decoded frame, and the peak RSS of that process.
Then the DiT's FLOPs per second of video (torch.utils.flop_counter over every DiT call of the
same clip made again, whole windows or cached context and the frames after it) against this
machine's measured float32 matmul throughput, and the latency of `soravid --help`. Prints a
table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a big red ball bouncing on a black background"
PHASES = ("load", "text", "dit", "decode", "mp4")
# Every way the pipeline runs the DiT: whole windows, and a causal context cached once per chunk
# then the frames after it.
DIT_ENTRIES = ("velocity", "cache_context", "velocity_after")


def soravid_command() -> list[str]:
    script = shutil.which("soravid", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "soravid"]


def preset_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--preset", args.preset, "--model", args.model]
    flags += ["--steps", str(args.steps)] if args.steps else []
    return flags + (["--guidance", str(args.guidance)] if args.guidance is not None else [])


def cli_run(args: argparse.Namespace, seconds: float) -> dict:
    """`soravid generate` in a fresh process, timed from launch to exit."""
    with tempfile.TemporaryDirectory() as folder:
        command = [*soravid_command(), "generate", PROMPT, "--seconds", f"{seconds:g}"]
        command += [*preset_flags(args), "-o", str(Path(folder) / "clip.mp4"), "-q"]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - start
    return {"cli_wall_s": wall, "cli_realtime_factor": seconds / wall}


def timed(totals: dict[str, float], phase: str, function, calls: list | None = None):
    """`function` wrapped to add its wall time to totals[phase] (and to count its calls)."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[phase] += time.perf_counter() - start
            if calls is not None:
                calls.append(function.__name__)

    return wrapper


def counted(flops: list[float], function):
    """`function` wrapped to add the FLOPs it runs (torch.utils.flop_counter) to flops[0]."""
    from torch.utils.flop_counter import FlopCounterMode

    def wrapper(*args, **kwargs):
        with FlopCounterMode(display=False) as counter:
            result = function(*args, **kwargs)
        flops[0] += counter.get_total_flops()
        return result

    return wrapper


def phase_run(args: argparse.Namespace, seconds: float) -> dict:
    """One clip through the library in this process, each phase timed (a child's work)."""
    import torch

    from soravid import video
    from soravid.config import resolve_preset
    from soravid.pipeline import GenerationRequest, Pipeline

    preset = resolve_preset(
        args.preset, seconds=seconds, model=args.model, steps=args.steps, guidance=args.guidance
    )
    totals = dict.fromkeys(PHASES, 0.0)
    start = time.perf_counter()
    pipeline = Pipeline.load(preset.model, "cpu")
    totals["load"] = time.perf_counter() - start
    loaded = time.perf_counter()
    model, dit_calls, first_frame = pipeline.model, [], []
    dit_entries = {name: getattr(model, name) for name in DIT_ENTRIES}
    model.encode_text = timed(totals, "text", model.encode_text)
    for name, function in dit_entries.items():
        setattr(model, name, timed(totals, "dit", function, dit_calls))
    autoencoder = model.autoencoder
    autoencoder.decode = timed(totals, "decode", autoencoder.decode)
    write = video.VideoWriter.write

    def write_frame(writer, frame):
        if not first_frame:
            first_frame.append(time.perf_counter() - loaded)
        write(writer, frame)

    video.VideoWriter.write = timed(totals, "mp4", write_frame)
    request = GenerationRequest(PROMPT, 0, preset)
    with tempfile.TemporaryDirectory() as folder:
        result = pipeline.generate(request, Path(folder) / "clip.mp4")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    phases = dict(totals)  # the timers stay on below; what they add is not this clip's
    # The same clip again, counting the FLOPs of every DiT call it makes.
    flops = [0.0]
    for name, function in dit_entries.items():
        setattr(model, name, counted(flops, function))
    with tempfile.TemporaryDirectory() as folder:
        pipeline.generate(request, Path(folder) / "clip.mp4")
    flops = flops[0]
    return {
        "seconds": seconds,
        "frames": result.frames,
        "steps": preset.steps,
        "guidance": preset.guidance,
        "generate_s": result.wall_time,
        "first_frame_s": first_frame[0],
        "phases_s": phases,
        "dit_calls": len(dit_calls),
        "dit_gflop_per_video_s": flops / 1e9 / seconds,
        "dit_gflop_per_s": flops / 1e9 / phases["dit"],
        "peak_rss_mb": peak,
        "threads": torch.get_num_threads(),
    }


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    """This machine's float32 matmul throughput, torch's default threads."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def help_latency(runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*soravid_command(), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_child(args: argparse.Namespace, seconds: float) -> dict:
    command = [sys.executable, __file__, "--one", f"{seconds:g}", *preset_flags(args)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def report(rows: list[dict], machine: dict) -> None:
    print(
        f"matmul {machine['matmul_gflops']:.0f} GFLOP/s (float32, {machine['threads']} threads); "
        f"soravid --help {machine['help_s']:.2f} s"
    )
    header = "video s   CLI s  RTF  lib s  1st frame  load  text    dit  decode   mp4"
    print(header + "  peak MB  DiT GFLOP/video-s  util")
    for row in rows:
        phases = row["phases_s"]
        utilisation = row["dit_gflop_per_s"] / machine["matmul_gflops"]
        print(
            f"{row['seconds']:>7g} {row['cli_wall_s']:>7.2f} {row['cli_realtime_factor']:>4.1f} "
            f"{row['generate_s']:>6.2f} {row['first_frame_s']:>10.2f} {phases['load']:>5.2f} "
            f"{phases['text']:>5.3f} {phases['dit']:>6.2f} {phases['decode']:>7.2f} "
            f"{phases['mp4']:>5.2f} {row['peak_rss_mb']:>8.0f} "
            f"{row['dit_gflop_per_video_s']:>18.1f} {utilisation:>5.0%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded", help="'embedded' or a .safetensors file")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 60.0])
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (preset's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance (preset's)")
    parser.add_argument("--out", type=Path, default=None, help="JSON to write")
    parser.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(phase_run(args, args.one)))
        return
    import torch

    machine = {
        "matmul_gflops": matmul_gflops(),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "help_s": help_latency(),
    }
    rows = [in_child(args, s) | cli_run(args, s) for s in sorted(args.seconds)]
    report(rows, machine)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine, "clips": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
