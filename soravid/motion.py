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
motion"). And for a world of one subject on a flat background, the frames a new clip is made
of can be cleared of all but its subject (`subject_only`), so a stray mark is not carried for
a whole clip.

The torus is right for every straight motion of the shapes world and wrong for its one
diagonal motion, bouncing, which turns at the edges. Given the clip's speed (`motion_speed`,
measured once on its first frames), a subject moving on a diagonal is carried on as a bounce
instead (`bounce_path`; the presets' `walls`, README "Bouncing off the walls").

The one chunk with no motion to carry on, the first continuing a clip from noise, can be drawn
more than once and the draw kept whose frames are most nearly shifts of each other
(`rigidity`; the presets' `draws`). Its frames only choose the motion: the chunk is then made
again from the reference carried on by it, as every later chunk is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MOVING = 0.5  # cells per frame under which an axis counts as still


def frame_shift(before: Tensor, after: Tensor, sub_cell: bool = False) -> Tensor:
    """Latent frames (B, C, h, w) -> (B, 2) whole cells (dy, dx) that best carry `before`
    onto `after`, each frame's background (its median cell) left out first; with `sub_cell`,
    in fractions of a cell (a parabola through the correlation's peak and its neighbours)."""
    correlation = circular_correlation(foreground(before.float()), foreground(after.float()))
    height, width = correlation.shape[1:]
    peak = correlation.flatten(1).argmax(dim=1)  # (B,)
    dy, dx = peak // width, peak % width
    shift = torch.stack([dy, dx], dim=1)  # (B, 2)
    if sub_cell:
        shift = shift + torch.stack([_vertex(correlation, dy, dx, axis) for axis in (0, 1)], dim=1)
    # Offsets past half the grid are the other way round the torus.
    grid = torch.tensor([height, width], device=shift.device)
    return torch.where(shift > grid // 2, shift - grid, shift)


def circular_correlation(before: Tensor, after: Tensor) -> Tensor:
    """(B, C, h, w) frames -> (B, h, w): for every shift (dy, dx) round the torus, how well
    `before` moved by it matches `after`, summed over channels."""
    spectra = torch.fft.fft2(after) * torch.fft.fft2(before).conj()
    return torch.fft.ifft2(spectra).real.sum(dim=1)


def _vertex(correlation: Tensor, dy: Tensor, dx: Tensor, axis: int) -> Tensor:
    """(B,) offset, within half a cell, of the peak of the parabola through the correlation
    (B, h, w) at (dy, dx) and its two neighbours along `axis`."""
    size = correlation.shape[1 + axis]
    batch = torch.arange(len(correlation), device=correlation.device)
    values = []
    for offset in (-1, 0, 1):
        y, x = ((dy + offset) % size, dx) if axis == 0 else (dy, (dx + offset) % size)
        values.append(correlation[batch, y, x])
    below, peak, above = values
    curvature = below - 2 * peak + above
    vertex = torch.where(curvature < 0, (below - above) / (2 * curvature), torch.zeros_like(peak))
    return vertex.clamp(-0.5, 0.5)


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


def extrapolate(
    history: Tensor, frames: int, start: Tensor | None = None, speed: Tensor | None = None
) -> Tensor:
    """History (B, C, T >= 2, h, w) -> (B, C, frames, h, w): `start` (B, C, h, w; default the
    last frame, or a reference `carry` has moved there) moved on by the shift between the last
    two frames, once per frame, wrapping round the edges. Given the clip's `speed` (B, 2) along
    y and x (`motion_speed`), a subject moving on a diagonal instead goes on at that speed,
    turning at the edges (`bounce_path`)."""
    start = history[:, :, -1] if start is None else start
    step = frame_shift(history[:, :, -2], history[:, :, -1])  # (B, 2)
    frame_numbers = torch.arange(1, frames + 1, device=step.device)
    ahead = frame_numbers[None, :, None] * step[:, None]  # (B, frames, 2)
    if speed is not None:
        latest = frame_shift(history[:, :, -2], history[:, :, -1], sub_cell=True)
        paths = zip(start, ahead, latest, speed, strict=True)
        ahead = torch.stack([bounce_path(*path) for path in paths])
    return torch.stack([roll_each(start, ahead[:, k]) for k in range(frames)], dim=2)


def motion_speed(history: Tensor) -> Tensor:
    """History (B, C, T >= 2, h, w) -> (B, 2) cells per frame along y and x: the median, to a
    fraction of a cell, of the frame intervals that moved along the axis (a turn at a wall
    nets about nothing, and a model's first frames may jump once). Measured once, on a clip's
    first frames (the model's own choice, or the clip being extended), it holds for the clip:
    the shapes world's speed never changes, and measured again on frames that followed a guess
    it would only echo the guess."""
    shifts = torch.stack(
        [
            frame_shift(history[:, :, k], history[:, :, k + 1], sub_cell=True).abs()
            for k in range(history.shape[2] - 1)
        ]
    )  # (T - 1, B, 2)
    moving = torch.where(shifts >= MOVING, shifts, torch.nan)
    return moving.nanmedian(dim=0).values.nan_to_num(0.0)


def bounce_path(frame: Tensor, straight: Tensor, latest: Tensor, speed: Tensor) -> Tensor:
    """(C, h, w) frame, its subject's straight path (frames, 2) of whole-cell (dy, dx), the
    last step (2,) to a fraction of a cell and the clip's speed (2,) -> the path of a subject
    moving on a diagonal, as the shapes world's bouncing does: at the mean of `speed` along
    both axes (it bounces at 45 degrees, and the model's first frames seldom move it at
    exactly that; one axis too fast or slow puts it past the speed a judge allows), the way the
    last step went (away from the nearer edge where it stalled, turning there), each
    component reversing at an edge, so that it stays inside the canvas. Any other path, or a
    subject across an edge, is kept: it wraps round the torus."""
    inside = subject_cells(frame)  # (h, w)
    if not bool((speed >= MOVING).all()) or not inside.any():
        return straight
    frames = torch.arange(1, len(straight) + 1, device=straight.device)
    pace = float(speed.mean())
    path = straight.clone()
    for axis, occupied in enumerate((inside.any(dim=1), inside.any(dim=0))):
        cells = occupied.nonzero().flatten()
        if occupied[0] and occupied[-1]:
            return straight
        low, high = int(cells.min()), int(cells.max())
        direction = float(latest[axis].sign())
        if abs(latest[axis]) < MOVING:
            direction = 1.0 if low + high < len(occupied) - 1 else -1.0
        free = (frames * direction * pace).round().long()
        # The low side goes between `first` and `last`, a cell short of each edge where the
        # subject is not there already: the cells measured are its body, not its blurred rim,
        # and a turn a cell late shows it across the edge.
        first = min(1, low)
        last = max(len(occupied) - 2 - high + low, low)
        span = last - first  # fold the free path into it: there and back is one period
        position = (low - first + free) % max(2 * span, 1)
        path[:, axis] = torch.where(position > span, 2 * span - position, position) + first - low
    return path


def subject_cells(frame: Tensor, threshold: float = 0.5) -> Tensor:
    """(C, h, w) -> (h, w) cells standing out from the background by over `threshold` of the
    most: the subject's body, without the blurred edge subject_only keeps."""
    strength = foreground(frame[None])[0].float().norm(dim=0)
    return strength > threshold * strength.max()


def rigidity(frames: Tensor) -> float:
    """Latent frames (1, C, T >= 2, h, w) -> how nearly each is the one before it shifted: the
    mean over consecutive pairs of the peak of their foregrounds' circular cross-correlation,
    normalised (1: a pure shift, lower where the subject breaks up, fades or changes)."""
    scores = []
    for before, after in zip(frames.unbind(2)[:-1], frames.unbind(2)[1:], strict=True):
        before, after = foreground(before.float()), foreground(after.float())
        peak = circular_correlation(before, after).max()
        scores.append(float(peak / (before.norm() * after.norm()).clamp(min=1e-8)))
    return sum(scores) / len(scores)


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
    """(h, w) region with its 8 neighbours inside the frame. The margin does not wrap round
    the edges (the region itself may): a subject that only touches an edge would keep a faint
    column at the opposite one, on a background now flat, and be seen across the edge."""
    grown = F.max_pool2d(region[None, None].float(), 3, stride=1, padding=1)
    return grown[0, 0].bool()


NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
