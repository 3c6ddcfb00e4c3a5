"""Shapes-world training clips, rendered on the fly: no dataset on disk.

One batch shares a canvas (clips of different sizes cannot stack); the canvas, the clips'
attributes, their start positions and their captions all come from one numpy generator,
whose state a checkpoint saves so a resumed run draws the same batches.

The data is split into shards, each with its own generators. A training step draws one
micro-batch from every shard, and the global batch is their concatenation, however the shards
are spread over processes (torchrun ranks) and accumulation steps within a process: the same
seed and shard count give the same batches, whether 1 process accumulates 4 micro-batches or
4 ranks take one each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from soravid.training.checkpoint import decode_json, encode_json
from soravid.world import random_caption, render_clip, sample_attributes


@dataclass
class ClipBatch:
    video: Tensor  # (B, 3, T, H, W) in [-1, 1]
    captions: list[str]  # "" is the unconditional caption


@dataclass
class CaptionStyle:
    uncond_prob: float = 0.0
    paraphrase_prob: float = 1.0
    part_drop_prob: float = 0.0


class ShapesClips:
    """Random rendered clips with random captions."""

    def __init__(self, canvases: list[list[int]], fps: int, seed: int) -> None:
        self.canvases = [tuple(canvas) for canvas in canvases]
        self.fps = fps
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int, frames: int, style: CaptionStyle | None = None) -> ClipBatch:
        style = style or CaptionStyle()
        width, height = self.canvases[self.rng.integers(len(self.canvases))]
        clips, captions = [], []
        for _ in range(size):
            attrs = sample_attributes(self.rng)
            seed = int(self.rng.integers(2**31))
            clips.append(render_clip(attrs, width, height, self.fps, frames / self.fps, seed))
            captions.append(self._caption(attrs, style))
        pixels = torch.from_numpy(np.stack(clips))  # (B, T, H, W, 3) uint8
        video = pixels.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # (B, 3, T, H, W)
        return ClipBatch(video=video, captions=captions)

    def _caption(self, attrs, style: CaptionStyle) -> str:
        if self.rng.random() < style.uncond_prob:
            return ""
        paraphrase = bool(self.rng.random() < style.paraphrase_prob)
        return random_caption(attrs, self.rng, paraphrase, style.part_drop_prob)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def shard_seed(seed: int, index: int) -> int:
    """Shard 0 keeps the run's seed (a one-shard run draws what soravid always drew); the
    others get independent streams derived from (seed, index)."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class DataShard:
    """One shard's clips and its torch generator (flow times, context lengths, noise)."""

    def __init__(self, canvases: list[list[int]], fps: int, seed: int, index: int) -> None:
        self.index, self.seed = index, seed
        self.clips = ShapesClips(canvases, fps, shard_seed(seed, index))
        self.noise = torch.Generator().manual_seed(shard_seed(seed, index))

    def start_stage(self, stage: int) -> None:
        """Fresh streams for a later stage, derived from (seed, index, stage): what a stage
        draws then depends on the weights it starts from, not on how many draws came before."""
        sequence = np.random.SeedSequence([self.seed, self.index, stage])
        stage_seed = int(sequence.generate_state(1)[0])
        self.clips.rng = np.random.default_rng(stage_seed)
        self.noise.manual_seed(stage_seed)

    def state(self) -> dict:
        """Plain data for a checkpoint (numpy's 128-bit state as JSON text)."""
        return {
            "index": self.index,
            "clips": encode_json(self.clips.state()),
            "noise": self.noise.get_state(),
        }

    def set_state(self, state: dict) -> None:
        self.clips.set_state(decode_json(state["clips"]))
        self.noise.set_state(state["noise"])
