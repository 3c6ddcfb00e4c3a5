"""The diffusion transformer over spacetime patches of the video latent (Sora; DiT, Peebles & Xie).

The latent (B, C, T, h, w) is cut into patches of (pt, ph, pw) latent cells, one token each.
Every latent frame has its own flow time, so clean context frames (t=0) can sit beside noisy
ones (diffusion forcing): the timestep embedding, plus the pooled text, drives adaLN-Zero
modulation per token frame, broadcast to that frame's tokens. Text tokens may also enter by
cross-attention (PixArt-alpha): the video tokens stay one sequence with one set of weights, text
costs a short extra attention per block, and a learned null token gives the empty caption
(classifier-free guidance) something to attend to. Positions are 3D rotary embeddings on the
video tokens, so the same weights run at any duration, size and aspect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from soravid.models.layers import CrossAttention, KeysValues, Mlp, SelfAttention, zero_init

GUIDANCE_RANGE = 10.0  # guidance scales the guidance embedding reads apart
EDGE_REACH = 8  # latent cells: an edge farther away than this reads as this far


@dataclass
class DiTConfig:
    latent_channels: int = 8
    patch: tuple[int, int, int] = (1, 2, 2)  # latent cells per token: (time, height, width)
    width: int = 384
    depth: int = 12
    heads: int = 6
    mlp_ratio: float = 4.0
    text_width: int = 128
    # Text tokens by cross-attention in every block; without it the pooled text alone
    # conditions through adaLN, as DiT conditions on a class: enough for short captions of a
    # few attributes, and a sixth cheaper per block.
    cross_attention: bool = True
    # Context frames (the first ones of a window, given clean) attend only to each other, so
    # nothing in them depends on the frames being made: generation computes their keys and
    # values once per chunk (cache_context) instead of at every sampler step.
    causal_context: bool = False
    # The guidance scale as an input (an embedding added to the conditioning, as FLUX-dev
    # does): a DiT distilled from its own classifier-free guidance gives the guided velocity in
    # one pass, where guidance takes two (the prompt and the empty caption).
    guidance_embedding: bool = False
    # A placement map (models/placement.py) beside the first latent frame of a new clip: where
    # its subject starts, drawn by the sampler, so the model need not read it from the noise.
    placement: bool = False
    # The last context frame beside every frame made after it, as more input channels (as
    # image-to-video models take their conditioning image): where the subject was is then at
    # each token's own place, not only an attention hop away.
    last_context_input: bool = False
    # Each latent cell's distance to the canvas's four edges, as input channels: positions are
    # rotary, only relative, so without them no token knows where the walls are that a
    # bouncing object turns at (README, "What holds shape and bounces back").
    edge_distance: bool = False

    def __post_init__(self) -> None:
        self.patch = tuple(self.patch)
        if self.width % self.heads or (self.width // self.heads) % 6:
            raise ValueError(
                f"DiT width {self.width} / heads {self.heads} must give a head size that is a "
                "multiple of 6 (rotary positions split it over three axes in pairs)"
            )


def edge_distances(frames: int, height: int, width: int, device: torch.device) -> Tensor:
    """(1, 4, frames, h, w): each latent cell's distance in cells to the left, right, top and
    bottom edge, capped at EDGE_REACH and scaled to 0..1; the same in every frame."""
    xs = torch.arange(width, device=device, dtype=torch.float32).expand(height, width)
    ys = torch.arange(height, device=device, dtype=torch.float32)[:, None].expand(height, width)
    distances = torch.stack([xs, width - 1 - xs, ys, height - 1 - ys])  # (4, h, w)
    scaled = distances.clamp(max=EDGE_REACH) / EDGE_REACH
    return scaled[None, :, None].expand(1, 4, frames, height, width)


class PatchEmbed3D(nn.Module):
    """Latent (B, C, T, h, w) -> tokens (B, T/pt, (h/ph)(w/pw), width), one per patch."""

    def __init__(
        self, channels: int, patch: tuple[int, int, int], width: int, bias: bool = True
    ) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(channels * math.prod(patch), width, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        pt, ph, pw = self.patch
        patches = rearrange(
            x, "b c (t pt) (h ph) (w pw) -> b t (h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw
        )
        return self.proj(patches)


class TimestepEmbedder(nn.Module):
    """Flow time t in [0, 1], any shape -> sinusoidal features -> MLP -> (..., width)."""

    def __init__(self, width: int, frequencies: int = 256) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(nn.Linear(frequencies, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: Tensor) -> Tensor:
        half = self.frequencies // 2
        freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
        angles = 1000 * t[..., None].float() * freqs  # scaled as DiT's 0..1000 timesteps
        return self.mlp(torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1))


class RoPE3D(nn.Module):
    """Rotary position embedding over (time, height, width) token coordinates.

    The head is split in three equal parts, one per axis; each rotates its pairs of channels by
    angles proportional to that axis' coordinate, so attention sees relative offsets only.
    """

    def __init__(self, head_dim: int, theta: float = 10_000.0) -> None:
        super().__init__()
        self.axis_dim = head_dim // 3
        exponents = torch.arange(0, self.axis_dim, 2) / self.axis_dim
        self.register_buffer("inv_freq", theta**-exponents, persistent=False)

    def rotations(self, grid: tuple[int, int, int]) -> Tensor:
        """Unit complex numbers (N, head_dim/2), one per token and channel pair, for the tokens
        of a (T, h, w) grid, time-major: one complex product rotates a whole head."""
        axes = [torch.arange(n, device=self.inv_freq.device, dtype=torch.float32) for n in grid]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
        angles = (coords[:, :, None] * self.inv_freq).reshape(coords.shape[0], -1)
        return torch.polar(torch.ones_like(angles), angles)


def rotate(x: Tensor, rotations: Tensor) -> Tensor:
    """Rotate channel pairs of x (B, heads, N, head_dim) by `rotations` (N, head_dim/2), each
    pair read as a complex number: a single complex multiply instead of ten real operations."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * rotations).flatten(-2).to(x.dtype)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x (B, T, S, D) with per-frame shift, scale (B, T, 1, D)."""
    return x * (1 + scale) + shift


class DiTBlock(nn.Module):
    """Self-attention and MLP under adaLN-Zero modulation per frame; cross-attention to text."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        width = config.width
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(width, config.heads)
        self.norm_text = nn.LayerNorm(width, eps=1e-6) if config.cross_attention else None
        self.cross = (
            CrossAttention(width, config.text_width, config.heads)
            if config.cross_attention
            else None
        )
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(width, int(width * config.mlp_ratio))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(
        self,
        x: Tensor,
        c: Tensor,
        rotations: Tensor,
        text: Tensor,
        text_mask: Tensor,
        mask: Tensor | None = None,
        past: KeysValues | None = None,
    ) -> tuple[Tensor, KeysValues]:
        """x (B, T, S, D) tokens per frame, c (B, T, D) conditioning per frame; attention
        under `mask`, and to the keys and values of `past` tokens too. Returns the new tokens
        and x's own keys and values."""
        frames = x.shape[1]
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c)[:, :, None].chunk(6, -1)
        h = modulate(self.norm1(x), shift1, scale1).flatten(1, 2)  # (B, N, D)
        h, keys_values = self.attn.attend(h, mask, lambda q: rotate(q, rotations), past)
        x = x + gate1 * h.unflatten(1, (frames, -1))
        if self.cross is not None:
            h = self.cross(self.norm_text(x).flatten(1, 2), text, text_mask)
            x = x + h.unflatten(1, (frames, -1))
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2)), keys_values


class FinalLayer(nn.Module):
    """Modulated norm, then a linear map from each token back to its patch of latent cells."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        width, cells = config.width, math.prod(config.patch) * config.latent_channels
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.proj = nn.Linear(width, cells)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.modulation(c)[:, :, None].chunk(2, dim=-1)
        return self.proj(modulate(self.norm(x), shift, scale))


@dataclass
class ContextCache:
    """What the frames after a causal context need of it: its keys and values in every block."""

    keys_values: list[KeysValues]
    token_frames: int
    last_frame: Tensor | None = None  # (B, C, h, w), for a DiT with last_context_input

    def first(self, count: int) -> ContextCache:
        """The cache of the first `count` rows of the batch."""
        rows = [(keys[:count], values[:count]) for keys, values in self.keys_values]
        last = None if self.last_frame is None else self.last_frame[:count]
        return ContextCache(rows, self.token_frames, last)


class DiT(nn.Module):
    """Predicts the flow velocity of a latent video given per-frame flow times and text."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        width = config.width
        self.patch_embed = PatchEmbed3D(config.latent_channels, config.patch, width)
        self.time_embed = TimestepEmbedder(width)
        self.text_pool_embed = nn.Sequential(
            nn.Linear(config.text_width, width), nn.SiLU(), nn.Linear(width, width)
        )
        if config.guidance_embedding:
            self.guidance_embed = TimestepEmbedder(width)
        if config.placement:
            # No bias: an all-zero map adds nothing, as no map does.
            self.placement_embed = PatchEmbed3D(1, config.patch, width, bias=False)
        if config.last_context_input:  # no bias either: rows without context get zeros
            self.last_context_embed = PatchEmbed3D(
                config.latent_channels, config.patch, width, bias=False
            )
        if config.edge_distance:
            self.edge_embed = PatchEmbed3D(4, config.patch, width, bias=False)
        if config.cross_attention:
            self.null_text = nn.Parameter(torch.zeros(1, 1, config.text_width))
        self.rope = RoPE3D(width // config.heads)
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.depth))
        self.final = FinalLayer(config)
        # Training's switch, not the model's: each block's activations are recomputed in the
        # backward pass instead of kept, the same gradients for about a third more compute.
        self.checkpoint_blocks = False
        self._initialize()

    def _initialize(self) -> None:
        """As DiT: Xavier everywhere, then every modulation and the output start at zero, so
        each block starts as the identity and the first prediction is zero velocity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if self.config.cross_attention:
            nn.init.normal_(self.null_text, std=0.02)
        for block in self.blocks:
            zero_init(block.modulation[-1])
        zero_init(self.final.modulation[-1])
        zero_init(self.final.proj)
        if self.config.guidance_embedding:  # no effect until distillation trains it
            zero_init(self.guidance_embed.mlp[-1])
        if self.config.edge_distance:  # a model trained without the edges starts as itself
            nn.init.zeros_(self.edge_embed.proj.weight)

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        text: Tensor,
        text_mask: Tensor,
        text_pooled: Tensor,
        context_frames: Tensor | int = 0,
        guidance: Tensor | None = None,
        placement: Tensor | None = None,
    ) -> Tensor:
        """x (B, C, T, h, w), t (B, T) flow time per latent frame, text (B, L, Dt), text_mask
        (B, L) bool, text_pooled (B, Dt) -> velocity (B, C, T, h, w). With causal_context, the
        first `context_frames` latent frames (an int, or one per row (B,)) see only each other.
        `guidance` (B,): the scale, for a DiT with guidance_embedding (distilled from its own
        classifier-free guidance); without it, the conditional velocity. `placement` (B, 1, T,
        h, w): where a new clip's subject starts, for a DiT with placement (zero frames, or
        None, where there is none)."""
        tokens, c, grid, _ = self._run(
            x, t, text, text_mask, text_pooled, guidance, context_frames, placement=placement
        )
        return self._unpatchify(self.final(tokens, c), grid)

    def cache_context(
        self,
        context: Tensor,
        t: Tensor,
        text: Tensor,
        text_mask: Tensor,
        text_pooled: Tensor,
        guidance: Tensor | None = None,
    ) -> ContextCache:
        """Run the context frames (B, C, Tc, h, w) at their times t (B, Tc) alone, as
        causal_context lets them, keeping each block's keys and values for forward_after."""
        if not self.config.causal_context:
            raise ValueError("only a DiT with causal_context can cache its context")
        _, _, grid, keys_values = self._run(context, t, text, text_mask, text_pooled, guidance)
        last = context[:, :, -1] if self.config.last_context_input else None
        return ContextCache(keys_values, grid[0], last)

    def forward_after(
        self,
        cache: ContextCache,
        x: Tensor,
        t: Tensor,
        text: Tensor,
        text_mask: Tensor,
        text_pooled: Tensor,
        guidance: Tensor | None = None,
    ) -> Tensor:
        """The velocity of the frames x (B, C, T, h, w) that follow a cached context: the same
        as forward over context and x together would give for x."""
        tokens, c, grid, _ = self._run(x, t, text, text_mask, text_pooled, guidance, cache=cache)
        return self._unpatchify(self.final(tokens, c), grid)

    def _run(
        self,
        x: Tensor,
        t: Tensor,
        text: Tensor,
        text_mask: Tensor,
        text_pooled: Tensor,
        guidance: Tensor | None,
        context_frames: Tensor | int = 0,
        cache: ContextCache | None = None,
        placement: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, tuple[int, int, int], list[KeysValues]]:
        """x's tokens through every block, its first `context_frames` masked as causal_context
        says, after a cached context's tokens if given: the last tokens (B, T/pt, S, D), the
        conditioning (B, T/pt, D), the token grid and each block's own keys and values."""
        grid = self._token_grid(x)
        mask = self._context_mask(context_frames, grid, x.device)
        tokens, c = self._embed(x, t, text_pooled, guidance, placement)
        if self.config.last_context_input:
            tokens = tokens + self.last_context_embed(self._last_context(x, context_frames, cache))
        text, text_mask = self._text(text, text_mask)
        before = 0 if cache is None else cache.token_frames  # token frames, positions first
        rotations = self.rope.rotations((before + grid[0], grid[1], grid[2]))
        rotations = rotations[before * grid[1] * grid[2] :]
        pasts = [None] * len(self.blocks) if cache is None else cache.keys_values
        keys_values = []
        for block, past in zip(self.blocks, pasts, strict=True):
            inputs = (tokens, c, rotations, text, text_mask, mask, past)
            if self.checkpoint_blocks and torch.is_grad_enabled():
                tokens, own = checkpoint(block, *inputs, use_reentrant=False)
            else:
                tokens, own = block(*inputs)
            keys_values.append(own)
        return tokens, c, grid, keys_values

    def _embed(
        self,
        x: Tensor,
        t: Tensor,
        text_pooled: Tensor,
        guidance: Tensor | None,
        placement: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """Tokens (B, T/pt, S, D) and the adaLN conditioning of each token frame (B, T/pt, D)."""
        tokens = self.patch_embed(x)
        if placement is not None:
            if not self.config.placement:
                raise ValueError("only a DiT with placement takes a placement map")
            tokens = tokens + self.placement_embed(placement.to(x.dtype))
        if self.config.edge_distance:  # (1, T/pt, S, D), the same for every row
            tokens = tokens + self.edge_embed(edge_distances(*x.shape[2:], x.device).to(x.dtype))
        frame_t = t.unflatten(1, (-1, self.config.patch[0])).mean(dim=2)  # one time per frame
        c = self.time_embed(frame_t) + self.text_pool_embed(text_pooled)[:, None]
        if guidance is not None:  # without one: the conditional velocity, as before distilling
            if not self.config.guidance_embedding:
                raise ValueError("only a DiT with guidance_embedding takes a guidance scale")
            # Scales up to 10 fall where the embedder reads flow times, 0..1.
            c = c + self.guidance_embed(guidance / GUIDANCE_RANGE)[:, None]
        return tokens, c

    def _last_context(
        self, x: Tensor, context_frames: Tensor | int, cache: ContextCache | None
    ) -> Tensor:
        """(B, C, T, h, w): beside each frame of x made after context, the last context frame
        (x's own, or the cache's when x follows one); zeros beside the context frames and in
        rows without context."""
        if cache is not None:
            return cache.last_frame[:, :, None].expand_as(x).to(x.dtype)
        count = torch.as_tensor(context_frames, device=x.device).reshape(-1).expand(len(x))
        rows = torch.arange(len(x), device=x.device)
        last = x[rows, :, (count - 1).clamp(min=0)]  # (B, C, h, w)
        made = torch.arange(x.shape[2], device=x.device)[None] >= count[:, None]  # (B, T)
        beside = made & (count[:, None] > 0)
        return last[:, :, None] * beside[:, None, :, None, None].to(x.dtype)

    def _text(self, text: Tensor, text_mask: Tensor) -> tuple[Tensor, Tensor]:
        if self.config.cross_attention:
            return self._with_null_token(text, text_mask)
        return text, text_mask

    def _context_mask(
        self, context_frames: Tensor | int, grid: tuple[int, int, int], device: torch.device
    ) -> Tensor | None:
        """With causal_context, (B or 1, 1, N, N), True where a query token may attend to a
        key token: a context token only to context tokens. None when nothing is masked."""
        if not self.config.causal_context:
            return None
        token_frames = torch.as_tensor(context_frames, device=device).reshape(-1, 1)
        token_frames = token_frames // self.config.patch[0]  # (B or 1, 1)
        if not token_frames.any():
            return None
        frame = torch.arange(grid[0], device=device).repeat_interleave(grid[1] * grid[2])
        is_context = frame[None, :] < token_frames  # (B, N)
        return (~is_context[:, :, None] | is_context[:, None, :])[:, None]

    def _unpatchify(self, out: Tensor, grid: tuple[int, int, int]) -> Tensor:
        """(B, T/pt, S, pt*ph*pw*C) -> (B, C, T, h, w)."""
        pt, ph, pw = self.config.patch
        return rearrange(
            out,
            "b t (h w) (c pt ph pw) -> b c (t pt) (h ph) (w pw)",
            h=grid[1],
            pt=pt,
            ph=ph,
            pw=pw,
        )

    def _token_grid(self, x: Tensor) -> tuple[int, int, int]:
        sizes, patch = tuple(x.shape[2:]), self.config.patch
        if any(size % p for size, p in zip(sizes, patch, strict=True)):
            raise ValueError(f"latent grid {sizes} is not divisible by the patch {patch}")
        return sizes[0] // patch[0], sizes[1] // patch[1], sizes[2] // patch[2]

    def _with_null_token(self, text: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Prepend the always-visible null token: (B, L, Dt) -> (B, 1+L, Dt), mask likewise."""
        null = self.null_text.to(text.dtype).expand(text.shape[0], -1, -1)
        visible = torch.ones_like(mask[:, :1])
        return torch.cat([null, text], dim=1), torch.cat([visible, mask], dim=1)
