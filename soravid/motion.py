"""Where a clip last moved, and the latent frames that motion would make next.

The sampler starts the frames that continue a clip from this guess, noised part of the way
(SamplerConfig.continue_from), instead of from pure noise: made from noise, they must find the
subject again in the context, and a small DiT loses it (README, "Continuing from the last
motion"); started from the last frame carried along, they only refine it. The motion is one
shift of the whole latent frame, read from the peak of the circular cross-correlation of the
last two frames (the shapes world is a torus; elsewhere it is the dominant motion).

What is carried on can be an earlier, cleaner frame than the last (the sampler's reference:
a clip's opening, or the last frame of a clip it continues), moved to where the last frame has
the subject (`carry`): the last frame holds the model's own artefacts, and carried on from
chunk to chunk they breed until the subject is lost (README, "Continuing from the last
motion"). And for a world of one subject on a flat background, a made opening can be cleared
of all but its subject first (`subject_only`), so a stray mark is not carried for a whole clip.
"""

from __future__ import annotations

import torch
from torch import Tensor


def frame_shift(before: Tensor, after: Tensor) -> Tensor:
    """Latent frames (B, C, h, w) -> (B, 2) whole cells (dy, dx) that best carry `before`
    onto `after`, each frame's background (its median cell) left out first."""
    spectra = [torch.fft.fft2(foreground(frame.float())) for frame in (before, after)]
    correlation = torch.fft.ifft2(spectra[1] * spectra[0].conj()).real.sum(dim=1)  # (B, h, w)
    height, width = correlation.shape[1:]
    peak = correlation.flatten(1).argmax(dim=1)  # (B,)
    dy, dx = peak // width, peak % width
    # Offsets past half the grid are the other way round the torus.
    dy = torch.where(dy > height // 2, dy - height, dy)
    dx = torch.where(dx > width // 2, dx - width, dx)
    return torch.stack([dy, dx], dim=1)


def foreground(frame: Tensor) -> Tensor:
    """(B, C, h, w) less its background."""
    return frame - background(frame)


def background(frame: Tensor) -> Tensor:
    """(B, C, h, w) -> (B, C, 1, 1): each frame's median cell, the background in the shapes
    world."""
    return frame.flatten(2).median(dim=2).values[..., None, None]


def carry(reference: Tensor, last: Tensor) -> Tensor:
    """(B, C, h, w) `reference` moved by whole cells to where `last` has its subject."""
    return roll_each(reference, frame_shift(reference, last))


def extrapolate(history: Tensor, frames: int, start: Tensor | None = None) -> Tensor:
    """History (B, C, T >= 2, h, w) -> (B, C, frames, h, w): `start` (B, C, h, w; default the
    last frame, or a reference `carry` has moved there) moved on by the shift between the last
    two frames, once per frame, wrapping round the edges."""
    start = history[:, :, -1] if start is None else start
    step = frame_shift(history[:, :, -2], history[:, :, -1])
    return torch.stack([roll_each(start, k * step) for k in range(1, frames + 1)], dim=2)


def roll_each(frames: Tensor, shifts: Tensor) -> Tensor:
    """(B, C, h, w) frames, each rolled by its own (dy, dx) of `shifts` (B, 2)."""
    pairs = zip(frames, shifts.tolist(), strict=True)
    return torch.stack([torch.roll(frame, tuple(shift), dims=(1, 2)) for frame, shift in pairs])


def subject_only(frame: Tensor, threshold: float = 0.25) -> Tensor:
    """(B, C, h, w) -> the same with every cell but the subject's set to the background (the
    median cell). The subject is the 8-connected region (on the torus) of cells standing out
    from the background by over `threshold` of the most, holding the most of that, with the
    cells around it, where its blurred edge is. For a world of one subject on a flat
    background (SamplerConfig.single_subject)."""
    flat = background(frame)
    strength = (frame - flat).float().norm(dim=1)  # (B, h, w)
    regions = [
        _strongest_region((cells > threshold * cells.max()).tolist(), cells.tolist())
        for cells in strength
    ]
    kept = torch.stack([_grow(torch.tensor(region)) for region in regions])[:, None]
    return torch.where(kept.to(frame.device), frame, flat)  # kept: (B, 1, h, w)


def _strongest_region(standing_out: list[list[bool]], strength: list[list[float]]) -> list:
    """(h, w) cells -> as booleans, the 8-connected region of `standing_out`, wrapping round
    the edges, of the greatest total strength."""
    height, width = len(standing_out), len(standing_out[0])
    labels = [[0] * width for _ in range(height)]
    best, best_total, label = 0, -1.0, 0
    for y0, x0 in ((y, x) for y in range(height) for x in range(width)):
        if not standing_out[y0][x0] or labels[y0][x0]:
            continue
        label += 1
        labels[y0][x0], stack, total = label, [(y0, x0)], 0.0
        while stack:
            y, x = stack.pop()
            total += strength[y][x]
            for dy, dx in NEIGHBOURS:
                ny, nx = (y + dy) % height, (x + dx) % width
                if standing_out[ny][nx] and not labels[ny][nx]:
                    labels[ny][nx] = label
                    stack.append((ny, nx))
        if total > best_total:
            best, best_total = label, total
    return [[cell == best for cell in row] for row in labels]


def _grow(region: Tensor) -> Tensor:
    """(h, w) region with its 8 neighbours, wrapping round the edges."""
    grown = region.clone()
    for shift in NEIGHBOURS:
        grown |= torch.roll(region, shift, dims=(0, 1))
    return grown


NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
