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
from soravid.training.latents import LatentPool
from soravid.world import (
    WorldAttributes,
    random_caption,
    render_clip,
    sample_attributes,
    start_position,
)
from soravid.world.spec import Emphasis


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
        """`size` clips of `frames` frames on one random canvas, each with a caption."""
        video, attributes, _ = self.render(self.random_canvas(), size, frames)
        return ClipBatch(video, [self.caption(attrs, style) for attrs in attributes])

    def random_canvas(self, weights: list[float] | None = None) -> int:
        """A canvas number, drawn uniformly or, given one weight per canvas, by weight."""
        if weights is None:  # the draw of every run before weights
            return int(self.rng.integers(len(self.canvases)))
        return int(self.rng.choice(len(self.canvases), p=np.divide(weights, sum(weights))))

    def render(
        self, canvas: int, size: int, frames: int, emphasis: Emphasis | None = None
    ) -> tuple[Tensor, list[WorldAttributes], Tensor]:
        """`size` clips of random attributes (drawn with `emphasis`, world.sample_attributes)
        on canvas number `canvas`: video (B, 3, T, H, W) in [-1, 1], each clip's attributes,
        and where its object is in frame 0, (B, 2) as (x, y) pixels."""
        width, height = self.canvases[canvas]
        seconds = frames / self.fps
        clips, attributes, starts = [], [], []
        for _ in range(size):
            attributes.append(sample_attributes(self.rng, emphasis))
            seed = int(self.rng.integers(2**31))
            clips.append(render_clip(attributes[-1], width, height, self.fps, seconds, seed))
            starts.append(start_position(attributes[-1], width, height, seed))
        pixels = torch.from_numpy(np.stack(clips))  # (B, T, H, W, 3) uint8
        video = pixels.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
        return video, attributes, torch.tensor(starts)

    def caption(self, attrs: WorldAttributes, style: CaptionStyle | None = None) -> str:
        """A caption of attrs in the given style ("" for the unconditional caption)."""
        style = style or CaptionStyle()
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
    """One shard's clips, its torch generator (flow times, context lengths, noise) and, in the
    DiT stage, its pool of encoded clips and, where the recipe keeps one, of encoded openings."""

    def __init__(self, canvases: list[list[int]], fps: int, seed: int, index: int) -> None:
        self.index, self.seed = index, seed
        self.clips = ShapesClips(canvases, fps, shard_seed(seed, index))
        self.noise = torch.Generator().manual_seed(shard_seed(seed, index))
        self.pool: LatentPool | None = None
        self.openings: LatentPool | None = None

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
            "pool": None if self.pool is None else self.pool.state(),
            "openings": None if self.openings is None else self.openings.state(),
        }

    def set_state(self, state: dict) -> None:
        self.clips.set_state(decode_json(state["clips"]))
        self.noise.set_state(state["noise"])
        if state.get("pool") is not None:
            self.pool = LatentPool.from_state(self.clips, state["pool"])
        if state.get("openings") is not None:
            self.openings = LatentPool.from_state(self.clips, state["openings"])
