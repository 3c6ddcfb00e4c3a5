"""Where a new clip's subject starts: a placement map the DiT reads beside the first latent frame.

A DiT with rotary positions only is (almost) translation-equivariant: from pure noise, where
every token sees the same thing, the place of the object can only come from faint chance
patterns in the noise, and a small model learns to read them very slowly (the shipped shapes
model, trained without a map, drew one object in 38% of its first frames). The start is as
free as the noise itself, so the sampler draws it from the seed and hands it to the model as a
map: a bump at that spot, one channel at the latent grid's resolution. Training gives the map
of the place the renderer drew the object at; chunks that continue a clip get none, since their
context says where the object is.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

BUMP_WIDTH = 1.0  # the bump's standard deviation, in latent cells


def placement_map(centres: Tensor, grid: tuple[int, int], cell: int, frames: int = 1) -> Tensor:
    """Pixel centres (B, 2) as (x, y) -> maps (B, 1, frames, h, w): a Gaussian bump around
    each on the first latent frame, on a (h, w) grid of `cell`-pixel cells, wrapping around the
    edges (a torus, as the shapes world's canvas is); later frames are zero."""
    height, width = grid
    xs = torch.arange(width, dtype=torch.float32) + 0.5  # cell centres, in cells
    ys = torch.arange(height, dtype=torch.float32) + 0.5
    cx, cy = (centres.float() / cell).unbind(dim=1)  # (B,) each
    dx = torch.remainder(xs[None] - cx[:, None] + width / 2, width) - width / 2  # (B, w)
    dy = torch.remainder(ys[None] - cy[:, None] + height / 2, height) - height / 2  # (B, h)
    squared = dx[:, None, :] ** 2 + dy[:, :, None] ** 2  # (B, h, w)
    bumps = torch.exp(-squared / (2 * BUMP_WIDTH**2))[:, None, None]  # (B, 1, 1, h, w)
    return F.pad(bumps, (0, 0, 0, 0, 0, frames - 1))


def random_centre(
    rng: np.random.Generator, width: int, height: int, margin: float
) -> tuple[float, float]:
    """A start drawn uniformly at least `margin` x the short side from every edge, so a subject
    up to twice that wide starts whole."""
    inset = margin * min(width, height)
    return float(rng.uniform(inset, width - inset)), float(rng.uniform(inset, height - inset))
