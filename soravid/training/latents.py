"""A pool of encoded training clips, from which the DiT's latent windows are cut.

Encoding a window afresh for every sample cost a small DiT as much as its own step: a window
of 4 latent frames mid-clip needs 6 encoded (13 + 8 frames through the encoder). The pool
keeps `clips` whole encoded clips per canvas and, each step, replaces the oldest `refresh`
of the step's canvas by new ones; windows are cut anywhere in them, a share at the very start
of a clip, where every generation begins. Each clip lives clips x canvases / refresh steps,
so the data stays fresh, and nothing goes to disk. Its state (latents, attributes, the next
clip to replace) is plain data in the checkpoint, so a resumed run cuts the same windows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from soravid.world import WorldAttributes
from soravid.world.spec import Emphasis

if TYPE_CHECKING:  # data.py holds a pool in each shard
    from soravid.training.data import CaptionStyle, ShapesClips

# video (B, 3, T, H, W) -> latent (B, C, Tl, h, w), on the CPU where the pool keeps it
Encode = Callable[[Tensor], Tensor]


class LatentPool:
    """Encoded clips of `latent_frames` latent frames, `clips` per canvas of `data`."""

    def __init__(
        self, data: ShapesClips, clips: int, latent_frames: int, emphasis: Emphasis | None = None
    ) -> None:
        self.data, self.clips, self.latent_frames = data, clips, latent_frames
        self.emphasis = dict(emphasis or {})  # how its clips' attributes are drawn
        self.latents: list[Tensor] = []  # per canvas: (clips, C, latent_frames, h, w)
        self.attributes: list[list[WorldAttributes]] = []  # per canvas, per clip
        self.starts: list[Tensor] = []  # per canvas: (clips, 2) where each object starts, x, y
        self.oldest: list[int] = []  # per canvas: the next clip to replace

    def fill(self, encode: Encode, pixel_frames: int) -> None:
        """Encode `clips` new clips of `pixel_frames` frames for every canvas."""
        self.latents, self.attributes, self.starts, self.oldest = [], [], [], []
        for canvas in range(len(self.data.canvases)):
            video, attributes, starts = self.data.render(
                canvas, self.clips, pixel_frames, self.emphasis
            )
            self.latents.append(encode(video))
            self.attributes.append(attributes)
            self.starts.append(starts)
            self.oldest.append(0)
        if self.latents[0].shape[2] != self.latent_frames:
            raise ValueError(f"{pixel_frames} frames do not encode to {self.latent_frames}")

    def refresh(self, canvas: int, count: int, encode: Encode, pixel_frames: int) -> None:
        """Replace the `count` oldest clips of one canvas by newly rendered ones."""
        video, attributes, starts = self.data.render(canvas, count, pixel_frames, self.emphasis)
        latents = encode(video)
        for index in range(count):
            slot = self.oldest[canvas]
            self.latents[canvas][slot] = latents[index]
            self.attributes[canvas][slot] = attributes[index]
            self.starts[canvas][slot] = starts[index]
            self.oldest[canvas] = (slot + 1) % self.clips

    def windows(
        self, canvas: int, size: int, frames: int, start_prob: float, style: CaptionStyle
    ) -> tuple[Tensor, list[str]]:
        """`size` windows (B, C, frames, h, w) of random clips of one canvas, and captions:
        with probability start_prob a window starts at the clip's first latent frame, else at
        a random later one."""
        rng, latest_start = self.data.rng, self.latent_frames - frames
        picks = rng.integers(self.clips, size=size)
        windows, captions = [], []
        for clip in picks.tolist():
            at_start = latest_start < 1 or rng.random() < start_prob
            start = 0 if at_start else int(rng.integers(1, latest_start + 1))
            windows.append(self.latents[canvas][clip, :, start : start + frames])
            captions.append(self.data.caption(self.attributes[canvas][clip], style))
        return torch.stack(windows), captions

    def whole_clips(
        self, canvas: int, size: int, style: CaptionStyle
    ) -> tuple[Tensor, list[str], Tensor]:
        """`size` random whole clips (B, C, latent_frames, h, w) of one canvas, their captions
        and where their objects start (B, 2): a pool of openings is drawn this way."""
        picks = self.data.rng.integers(self.clips, size=size).tolist()
        captions = [self.data.caption(self.attributes[canvas][clip], style) for clip in picks]
        return self.latents[canvas][picks], captions, self.starts[canvas][picks]

    def state(self) -> dict:
        """Plain tensors, lists and strings, for a checkpoint."""
        return {
            "latents": list(self.latents),
            "attributes": [[attrs.to_dict() for attrs in clips] for clips in self.attributes],
            "starts": list(self.starts),
            "oldest": list(self.oldest),
            "emphasis": self.emphasis,
        }

    @classmethod
    def from_state(cls, data: ShapesClips, state: dict) -> LatentPool:
        """The pool a checkpoint saved, drawing new clips from `data`."""
        latents = list(state["latents"])
        pool = cls(data, latents[0].shape[0], latents[0].shape[2], state.get("emphasis"))
        pool.latents = latents
        pool.attributes = [
            [WorldAttributes(**attrs) for attrs in clips] for clips in state["attributes"]
        ]
        # A checkpoint from before pools kept starts: only openings use them, and it had none.
        pool.starts = list(state.get("starts", [torch.zeros(len(clips), 2) for clips in latents]))
        pool.oldest = list(state["oldest"])
        return pool


def object_mask(latent: Tensor, threshold: float = 0.1) -> Tensor:
    """(B, C, T, h, w) latents -> (B, 1, T, h, w), 1 where a frame's subject is: the latent
    pixels farther from the frame's median pixel (its background, in the shapes world) than
    `threshold` of the farthest one, grown by one pixel to cover the subject's edge."""
    background = latent.flatten(3).median(dim=3).values[..., None, None]  # (B, C, T, 1, 1)
    distance = (latent - background).pow(2).sum(dim=1, keepdim=True)  # (B, 1, T, h, w)
    farthest = distance.flatten(3).amax(dim=3)[..., None, None]
    mask = (distance > threshold * farthest).to(latent.dtype)
    return F.max_pool3d(mask, (1, 3, 3), stride=1, padding=(0, 1, 1))


def object_loss_weight(latent: Tensor, object_weight: float) -> Tensor | None:
    """Per-pixel loss weights (B, 1, T, h, w): 1 + object_weight on the subject's latent
    pixels, 1 elsewhere; None (a plain mean) for a weight of 0."""
    return 1.0 + object_weight * object_mask(latent) if object_weight else None
