"""Probe (run by hand): small squares and triangles per background, judged as rendered
and after the autoencoder's round trip.

    python benchmarks/background_ceiling.py MODEL [BACKGROUND ...]
"""

import itertools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from autoencoder_ceiling import judge_frames, load_autoencoder, reconstruct

from soravid.world import render_clip
from soravid.world.spec import BACKGROUND_COLOURS, OBJECT_COLOURS, WorldAttributes

ae = load_autoencoder(Path(sys.argv[1]))
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "clip.mp4"
    for bg in sys.argv[2:] or BACKGROUND_COLOURS:
        for shape in ("square", "triangle"):
            res = {"raw": [], "ae": []}
            for i, (colour, motion) in enumerate(
                itertools.product(OBJECT_COLOURS, ("moving right", "moving down", "bouncing"))
            ):
                if colour == bg:
                    continue
                attrs = WorldAttributes(bg, colour, shape, "small", motion)
                clip = render_clip(attrs, 96, 64, 8, 5.125, i)
                for kind, frames in (("raw", clip), ("ae", reconstruct(ae, clip))):
                    verdict = judge_frames(frames, attrs, path, 8)
                    res[kind].append(bool(verdict.windows[0].checks["shape"]))
            print(bg, shape, {k: f"{sum(v)}/{len(v)}" for k, v in res.items()}, flush=True)
