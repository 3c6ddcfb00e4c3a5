"""How fast the shapes-world renderer makes frames (the trainer renders clips on the fly).

    python benchmarks/render_speed.py [--seconds 2]

Prints frames per second for each canvas, one core, averaged over random attributes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from soravid.world.render import render_frames
from soravid.world.spec import sample_attributes

CANVASES = [(64, 64), (96, 64), (112, 64), (256, 144), (512, 288), (1024, 576)]


def frames_per_second(width: int, height: int, budget: float) -> float:
    """Render 5-second clips at 8 fps with random attributes for about `budget` seconds."""
    rng = np.random.default_rng(0)
    frames, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        attrs = sample_attributes(rng)
        for _ in render_frames(attrs, width, height, 8, 5, seed=frames):
            frames += 1
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent per canvas")
    args = parser.parse_args()
    print(f"{'canvas':>10}  {'frames/s':>9}  {'5-s clips/s at 8 fps':>20}")
    for width, height in CANVASES:
        rate = frames_per_second(width, height, args.seconds)
        print(f"{width:>4}x{height:<5}  {rate:9.0f}  {rate / 40:20.1f}")


if __name__ == "__main__":
    main()
