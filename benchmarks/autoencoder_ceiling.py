"""The autoencoder's ceiling: judge rendered clips after encode -> decode -> H.264.

No DiT can beat its autoencoder, so this is measured before the DiT is trained on it. Clips are
drawn like `soravid eval`'s (complete random attributes), rendered by the world's renderer,
reconstructed by the autoencoder, written as MP4 and judged.

    python benchmarks/autoencoder_ceiling.py runs/shapes/model.safetensors --n 40
    python benchmarks/autoencoder_ceiling.py runs/shapes --n 40     # a run's checkpoint
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from soravid.evaluate import summarise
from soravid.models.autoencoder import VideoAutoencoder
from soravid.pipeline import from_uint8_frames, to_uint8_frames
from soravid.video import VideoWriter
from soravid.world import WorldAttributes, judge_video, render_clip, sample_attributes
from soravid.world.judge import Verdict


def load_autoencoder(source: Path) -> VideoAutoencoder:
    if source.is_dir():  # a training run: its checkpoint's autoencoder, whatever the stage
        from soravid.models.registry import build_model
        from soravid.training.checkpoint import decode_json, load_checkpoint
        from soravid.world import CAPTION_VOCABULARY

        saved = load_checkpoint(source)
        model = build_model(decode_json(saved["recipe"])["model"], CAPTION_VOCABULARY)
        model.load_state_dict(saved["model"])
    else:
        from soravid.weights import load_model

        model = load_model(source)
    return model.autoencoder.eval()


@torch.no_grad()
def reconstruct(autoencoder: VideoAutoencoder, clip: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 -> the same after encode and decode (T = 1 mod temporal factor)."""
    return to_uint8_frames(autoencoder(from_uint8_frames(clip)))


def judge_frames(frames: np.ndarray, attrs: WorldAttributes, path: Path, fps: int) -> Verdict:
    """Write (T, H, W, 3) uint8 frames to `path` as the CLI would, and judge them."""
    height, width = frames.shape[1:3]
    with VideoWriter(path, width, height, fps, overwrite=True) as writer:
        for frame in frames:
            writer.write(frame)
    return judge_video(path, attrs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="model .safetensors or a training run folder")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="96x64", help="WxH canvas")
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.125)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    autoencoder = load_autoencoder(args.source)
    verdicts = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.n):
            rng = np.random.default_rng([args.seed, index])
            attrs = sample_attributes(rng)
            clip = render_clip(attrs, width, height, args.fps, args.seconds, args.seed + index)
            path = Path(folder) / f"clip-{index:03d}.mp4"
            verdicts.append(judge_frames(reconstruct(autoencoder, clip), attrs, path, args.fps))
    report = summarise(verdicts)
    report.pop("results")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
