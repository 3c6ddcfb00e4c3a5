"""Does the judge agree with the renderer? Render, encode (H.264), judge: expect 100%.

    python benchmarks/judge_sweep.py                 # 216 clips, 5-60 s, through VideoWriter
    python benchmarks/judge_sweep.py --crf 28        # then re-encoded harder, as foreign clips are
    python benchmarks/judge_sweep.py --clips 24 --max-seconds 10   # a quick look

Every attribute value appears in equal shares (shuffled together by --seed), on landscape,
portrait and square canvases from 32 to 128 pixels, at 8 to 30 fps. Exits 1 if any clip fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from soravid.world.judge import Verdict, judge_video
from soravid.world.render import save_clip
from soravid.world.spec import ATTRIBUTE_VALUES, BACKGROUND_COLOURS, WorldAttributes

CANVASES = [(96, 64), (64, 96), (64, 64), (128, 72), (72, 128), (48, 48), (32, 32), (48, 32),
            (32, 56), (112, 64), (64, 112), (128, 128)]  # fmt: skip


def sweep_cases(count: int, seed: int, max_seconds: float) -> list[dict]:
    """`count` clip recipes: each attribute's values tiled evenly, then shuffled."""
    rng = np.random.default_rng(seed)
    columns = {n: rng.permutation(np.resize(v, count)) for n, v in ATTRIBUTE_VALUES.items()}
    cases = []
    for i in range(count):
        values = {name: str(column[i]) for name, column in columns.items()}
        if values["colour"] == values["background"]:  # the one clash: white on white
            values["background"] = str(rng.choice(BACKGROUND_COLOURS[:3]))
        cases.append(
            {
                "attrs": WorldAttributes(**values),
                "canvas": CANVASES[i % len(CANVASES)],
                "fps": int(rng.integers(8, 31)),
                "seconds": float(np.round(rng.uniform(5, max_seconds) * 2) / 2),
                "seed": i,
            }
        )
    return cases


def reencode(path: Path, crf: int) -> Path:
    """The clip re-encoded by plain ffmpeg at a given libx264 CRF, as clips from elsewhere are."""
    out = path.with_name(f"{path.stem}-crf{crf}.mp4")
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(path)]
    subprocess.run([*command, "-c:v", "libx264", "-crf", str(crf), str(out)], check=True)
    return out


def run_case(case: dict, folder: Path, crf: int | None) -> Verdict:
    width, height = case["canvas"]
    path = save_clip(folder / "clip.mp4", case["attrs"], width, height, case["fps"],
                     case["seconds"], case["seed"])  # fmt: skip
    return judge_video(reencode(path, crf) if crf else path, case["attrs"])


def describe(case: dict, verdict: Verdict) -> str:
    width, height = case["canvas"]
    bad = [f"window {i}: {w.measured} {w.values}" for i, w in enumerate(verdict.windows)
           if not w.passed]  # fmt: skip
    head = f"{verdict.caption} | {width}x{height} {case['fps']} fps {case['seconds']} s"
    return "\n    ".join([head, *bad])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=216)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--crf", type=int, default=None, help="re-encode at this libx264 CRF")
    parser.add_argument("--json", type=Path, default=None, help="write every verdict here")
    args = parser.parse_args()
    cases = sweep_cases(args.clips, args.seed, args.max_seconds)
    start, failures, windows, records = time.perf_counter(), Counter(), 0, []
    with tempfile.TemporaryDirectory() as folder:
        for i, case in enumerate(cases):
            verdict = run_case(case, Path(folder), args.crf)
            windows += len(verdict.windows)
            records.append(verdict.to_dict())
            for window in verdict.windows:
                failures.update(name for name, ok in window.checks.items() if not ok)
            if not verdict.passed:
                failures["clips"] += 1
                print(f"FAIL {i}: {describe(case, verdict)}", flush=True)
    elapsed = time.perf_counter() - start
    frames = sum(round(c["seconds"] * c["fps"]) for c in cases)
    passed = len(cases) - failures.pop("clips", 0)
    print(f"{passed}/{len(cases)} clips pass every window ({windows} windows, {frames} frames, "
          f"{sum(c['seconds'] for c in cases) / 60:.0f} min of video) in {elapsed:.0f} s; "
          f"crf {args.crf or 'VideoWriter'}")  # fmt: skip
    print("failed checks per window:", dict(failures) or "none")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    return 0 if passed == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
