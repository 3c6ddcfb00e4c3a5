"""Frame by frame: where in an evaluated clip the object loses its shape.

`soravid eval` judges shape once per window, from the median template fit of its frames. This
reads an eval folder (its report.json and clips) and fits every frame alone, for the clips
whose first frame has the caption's shape: the share of their later frames that keep it, by
the caption's size and shape, by motion kind (still, straight, bouncing), and by the frame's
place in its latent frame (the autoencoder decodes each latent frame after the first into
`temporal_factor` frames; place 0 is the first of them, the furthest from where the latent
frame was encoded from).

    soravid eval --n 100 --seed 1000 --out-dir eval-s1000 -q
    python benchmarks/shape_frames.py eval-s1000 --out shape-frames.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from soravid.video import read_frames
from soravid.world import parse_caption
from soravid.world.measure import measure_frame


def motion_kind(motion: str) -> str:
    return motion if motion in ("still", "bouncing") else "straight"


def shape_frames(folder: Path, temporal_factor: int = 4) -> dict:
    report = json.loads((folder / "report.json").read_text())
    kept, by_place, first_right = defaultdict(list), defaultdict(list), defaultdict(list)
    for result in report["results"]:
        wanted = parse_caption(result["caption"]).attributes
        clip = folder / Path(result["path"]).name
        fits = [measure_frame(frame).fit for frame in read_frames(clip)]
        right = np.array([fit is not None and fit.best == wanted.shape for fit in fits])
        key = f"{wanted.size} {wanted.shape}"
        first_right[key].append(bool(right[0]))
        if not right[0]:
            continue
        later = right[1:]
        kept[key, motion_kind(wanted.motion)].append(float(later.mean()))
        if wanted.motion != "still":
            for place in range(temporal_factor):
                by_place[key, place].extend(later[place::temporal_factor].tolist())
    keys = sorted(first_right)
    return {
        "folder": str(folder),
        "clips": len(report["results"]),
        "first_frame_right": {k: round(float(np.mean(first_right[k])), 3) for k in keys},
        "later_frames_right": {
            k: {
                kind: round(float(np.mean(kept[k, kind])), 3)
                for kind in ("still", "straight", "bouncing")
                if kept[k, kind]
            }
            for k in keys
        },
        "moving_by_place": {
            k: [round(float(np.mean(by_place[k, p])), 3) for p in range(temporal_factor)]
            for k in keys
            if by_place[k, 0]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a `soravid eval --out-dir` folder")
    parser.add_argument("--temporal-factor", type=int, default=4)
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args()
    report = shape_frames(args.folder, args.temporal_factor)
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
