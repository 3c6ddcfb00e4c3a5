"""Shape by the contract's own rule: area / bounding-box area, nearest of its three ratios.

soravid's judge fits templates instead (soravid/world/measure.py says why: on a 32-px canvas
the ratio cannot tell a 7-px triangle from a circle). An outside judge that follows
SHAPES_WORLD.md to the letter uses the ratio, so this re-judges shape that way: on the frames
of a window where the object (the largest region of pixels over 60 from the border median,
8-connected on the torus) touches no edge, the median of area / box area, named by the
nearest of circle 0.785, square 1, triangle 0.5. A window with no such frame gets no verdict
and is left out (a clip with none judged counts as right).

    python benchmarks/contract_shape.py runs/eval-s0 runs/eval-s3    # `soravid eval` folders
    python benchmarks/contract_shape.py --rendered 72                # the renderer, H.264
    python benchmarks/contract_shape.py --rendered 72 --autoencoder MODEL   # and an autoencoder

Prints, per folder, the share of clips whose every judged window has the caption's shape, by
the ratio and by soravid's judge, and the median ratio of each shape and size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from autoencoder_ceiling import judge_frames, load_autoencoder, reconstruct

from soravid.video import probe_video, read_frames
from soravid.world import WorldAttributes, parse_caption, render_clip
from soravid.world.judge import window_bounds
from soravid.world.measure import SHAPE_GEOMETRY, largest_object

RATIO = {shape: area for shape, (area, _) in SHAPE_GEOMETRY.items()}


def fill_ratio(frame: np.ndarray) -> float | None:
    """(H, W, 3) uint8 -> the object's area / bounding-box area; None unless there is exactly
    one object and it touches no edge."""
    _, distance, objects, ys, xs = largest_object(frame.astype(np.float32))
    if objects != 1:
        return None
    height, width = distance.shape
    if ys.min() == 0 or xs.min() == 0 or ys.max() == height - 1 or xs.max() == width - 1:
        return None
    return len(ys) / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))


def window_ratios(path: Path) -> list[float | None]:
    """The median fill ratio of each judging window of a video, None where no frame counts."""
    info = probe_video(path)
    bounds = window_bounds(info.frames, info.fps)
    ratios: list[list[float]] = [[] for _ in bounds]
    for index, frame in enumerate(read_frames(info)):
        window = next(k for k, (start, end) in enumerate(bounds) if start <= index < end)
        ratio = fill_ratio(frame)
        if ratio is not None:
            ratios[window].append(ratio)
    return [float(np.median(r)) if r else None for r in ratios]


def nearest_shape(ratio: float) -> str:
    return min(RATIO, key=lambda shape: abs(RATIO[shape] - ratio))


def tally(clips: list[tuple[Path, WorldAttributes, bool]]) -> dict:
    """Clips (video, attributes, soravid's shape verdict) -> the report for them."""
    by_ratio, by_judge, ratios = 0, 0, defaultdict(list)
    for path, attributes, judged in clips:
        windows = [r for r in window_ratios(path) if r is not None]
        by_ratio += all(nearest_shape(r) == attributes.shape for r in windows)
        by_judge += judged
        ratios[f"{attributes.size} {attributes.shape}"] += windows
    return {
        "clips": len(clips),
        "shape_by_ratio": round(by_ratio / len(clips), 3),
        "shape_by_soravid_judge": round(by_judge / len(clips), 3),
        "median_ratio": {k: round(float(np.median(v)), 3) for k, v in sorted(ratios.items()) if v},
    }


def eval_folder(folder: Path) -> dict:
    report = json.loads((folder / "report.json").read_text())
    clips = []
    for result in report["results"]:
        path = Path(result["path"])
        path = path if path.exists() else folder / path.name
        judged = all(window["checks"]["shape"] for window in result["windows"])
        clips.append((path, parse_caption(result["caption"]).attributes, judged))
    return tally(clips)


def rendered(count: int, autoencoder_path: Path | None, seed: int) -> dict:
    """`count` clips of every shape, size and motion in turn, rendered at the default canvas
    (and put through the autoencoder), written by soravid's H.264 writer."""
    autoencoder = load_autoencoder(autoencoder_path) if autoencoder_path else None
    rng = np.random.default_rng(seed)
    shapes, sizes = list(RATIO), ["small", "large"]
    motions = ["still", "moving right", "moving down", "bouncing"]
    clips = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(count):
            background = str(rng.choice(["black", "gray", "navy", "white"]))
            colour = str(rng.choice(["red", "green", "blue", "yellow", "magenta", "cyan"]))
            attributes = WorldAttributes(
                background,
                colour,
                shapes[index % 3],
                sizes[index // 3 % 2],
                motions[index // 6 % 4],
            )
            frames = render_clip(attributes, 96, 64, 8, 5.125, int(rng.integers(2**31)))
            if autoencoder is not None:
                frames = reconstruct(autoencoder, frames)
            path = Path(folder) / f"clip-{index:03d}.mp4"
            verdict = judge_frames(frames, attributes, path, 8)
            judged = all(window.checks["shape"] for window in verdict.windows)
            clips.append((path, attributes, judged))
        return tally(clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="`soravid eval` output folders")
    parser.add_argument("--rendered", type=int, default=0, help="judge this many rendered clips")
    parser.add_argument("--autoencoder", type=Path, help="model whose autoencoder they go through")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = {str(folder): eval_folder(folder) for folder in args.folders}
    if args.rendered:
        name = f"rendered{' through ' + str(args.autoencoder) if args.autoencoder else ''}"
        rows[name] = rendered(args.rendered, args.autoencoder, args.seed)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
