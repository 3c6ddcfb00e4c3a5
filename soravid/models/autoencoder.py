"""A causal video autoencoder: the compression network that the DiT works in.

Video (B, 3, T, H, W) in [-1, 1] <-> latent (B, C, 1 + (T-1)//tf, H//sf, W//sf), tf and sf the
temporal and spatial factors; T must be 1 modulo tf. It is causal in time: frame 0 is encoded
alone, then each group of tf frames; a latent frame depends only on frames up to the last one it
covers, and a decoded frame only on latent frames up to its own. So a clip's tail can be encoded
as context, and decoding can stream chunk by chunk.

How it stays causal: temporal convolutions pad only the past (repeating the first frame),
temporal strides keep the first frame alone, and normalisation is per pixel (a norm over time
would leak the future). Spatial padding repeats or wraps edge pixels rather than inventing a
zero border (zero padding left faint artefacts along the image border, FINDINGS.md). Nothing
here knows the shapes world: it is a general RGB autoencoder.

Channels double each time the resolution halves: base, 2*base, 4*base, ...
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

PADDING_MODES = ("replicate", "circular")

# What a streamed decode carries from one chunk to the next: each temporal convolution's last
# input frames, by module. Empty at the start of a clip.
DecodeCache = dict[nn.Module, Tensor]


@dataclass
class AutoencoderConfig:
    base_channels: int = 32
    latent_channels: int = 8
    spatial_factor: int = 4  # a power of two
    temporal_factor: int = 4  # a power of two
    blocks_per_level: int = 1
    padding: str = "replicate"  # spatial padding: "replicate" or "circular"
    # Pixels folded into channels before the first convolution (and unfolded after the last):
    # skips the full-resolution convolutions, which cost the most, at a small loss of detail.
    patch_size: int = 1

    def __post_init__(self) -> None:
        if self.spatial_factor % self.patch_size:
            raise ValueError("autoencoder spatial_factor must be a multiple of patch_size")
        for name in ("spatial_factor", "temporal_factor", "patch_size"):
            factor = getattr(self, name)
            if factor < 1 or factor & (factor - 1):
                raise ValueError(f"autoencoder {name} must be a power of two, got {factor}")
        if self.padding not in PADDING_MODES:
            raise ValueError(f"autoencoder padding must be one of {PADDING_MODES}")

    @property
    def levels(self) -> int:
        """Downsampling stages: each halves space, time or both."""
        return max(self.conv_spatial_factor, self.temporal_factor).bit_length() - 1

    @property
    def conv_spatial_factor(self) -> int:
        """The spatial downsampling left to the convolutions after the patch fold."""
        return self.spatial_factor // self.patch_size

    def halves_space(self, level: int) -> bool:
        return level < self.conv_spatial_factor.bit_length() - 1

    def halves_time(self, level: int) -> bool:
        return level < self.temporal_factor.bit_length() - 1

    def channels(self, level: int) -> int:
        return self.base_channels * 2**level


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of each pixel of each frame.

    It keeps each pixel's absolute level, so a flat colour survives it. A GroupNorm over each
    frame (one channel per group at these widths) subtracted every channel's spatial mean:
    the autoencoder lost the colours of backgrounds and objects and never recovered them.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


class SpatialConv(nn.Module):
    """A 2D convolution applied to every frame, padding by repeating or wrapping edges."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: str, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride)
        self.pad = (kernel - 1) // 2
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        frames = rearrange(x, "b c t h w -> (b t) c h w")
        if self.pad:
            frames = F.pad(frames, (self.pad,) * 4, mode=self.padding)
        return rearrange(self.conv(frames), "(b t) c h w -> b c t h w", t=x.shape[2])


class CausalTimeConv(nn.Module):
    """A convolution along time that sees only the present and the past.

    `rate` is how many frames of this layer's input make one latent frame; it lets the decoder
    compute how many latent frames of history a streamed chunk needs.
    """

    def __init__(self, cin: int, cout: int, kernel: int, rate: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, (kernel, 1, 1), stride=(stride, 1, 1))
        self.kernel, self.rate = kernel, rate

    def forward(self, x: Tensor, cache: DecodeCache | None = None) -> Tensor:
        """With a cache, x continues the frames of the last call (stride 1 only): their last
        kernel-1 frames are its past, and x's own are kept for the next call."""
        past = None if cache is None else cache.get(self)
        if past is None:
            # Repeat the first frame into the past; with stride 2 and kernel 3, output j sees
            # input frames 2j-2..2j, so output 0 sees frame 0 alone and T = 2n+1 frames give n+1.
            padded = F.pad(x, (0, 0, 0, 0, self.kernel - 1, 0), mode="replicate")
        else:
            padded = torch.cat([past, x], dim=2)
        if cache is not None:
            cache[self] = padded[:, :, -(self.kernel - 1) :]
        # The (k, 1, 1) kernel as a (k, 1) one over (time, pixels): the same sums, and conv2d
        # runs them twice as fast as conv3d on the CPU.
        batch, channels, frames, height, width = padded.shape
        out = F.conv2d(
            padded.reshape(batch, channels, frames, height * width),
            self.conv.weight.squeeze(-1),
            self.conv.bias,
            stride=(self.conv.stride[0], 1),
        )
        return out.unflatten(-1, (height, width))

    @property
    def lookback(self) -> Fraction:
        """How far into the past one output frame sees, in latent frames."""
        return Fraction(self.kernel - 1, self.rate)


class ResBlock(nn.Module):
    """Two per-frame 3x3 convolutions and a causal temporal one, with a residual connection."""

    def __init__(self, cin: int, cout: int, padding: str, rate: int) -> None:
        super().__init__()
        self.norm1 = ChannelNorm(cin)
        self.conv1 = SpatialConv(cin, cout, 3, padding)
        self.norm2 = ChannelNorm(cout)
        self.conv2 = SpatialConv(cout, cout, 3, padding)
        self.time = CausalTimeConv(cout, cout, 3, rate)
        self.skip = SpatialConv(cin, cout, 1, padding) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, cache: DecodeCache | None = None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + self.time(h, cache)


class Downsample(nn.Module):
    """Halves space (strided 3x3 convolution) and/or time (strided causal convolution)."""

    def __init__(self, cin: int, cout: int, padding: str, space: bool, time: bool, rate: int):
        super().__init__()
        stride = 2 if space else 1
        self.space = SpatialConv(cin, cout, 3 if space else 1, padding, stride=stride)
        self.time = CausalTimeConv(cout, cout, 3, rate, stride=2) if time else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.time(self.space(x))


class Upsample(nn.Module):
    """Doubles time (each frame becomes two, the very first stays one) and/or space (nearest)."""

    def __init__(self, cin: int, cout: int, padding: str, space: bool, time: bool, rate: int):
        super().__init__()
        self.time = CausalTimeConv(cin, 2 * cin, 3, rate) if time else None
        self.space = space
        self.conv = SpatialConv(cin, cout, 3 if space else 1, padding)

    def forward(self, x: Tensor, cache: DecodeCache | None = None) -> Tensor:
        if self.time is not None:
            starts_clip = cache is None or self.time not in cache
            x = rearrange(self.time(x, cache), "b (c two) t h w -> b c (t two) h w", two=2)
            if starts_clip:
                x = x[:, :, 1:]  # (B, C, 2T - 1, H, W): latent frame 0 is frame 0 alone
        if self.space:
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        return self.conv(x)


class FoldPatches(nn.Module):
    """(B, C, T, H, W) -> (B, C*p*p, T, H/p, W/p): each p x p patch of a frame into channels."""

    def __init__(self, patch: int) -> None:
        super().__init__()
        self.patch = patch

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch
        return rearrange(x, "b c t (h p1) (w p2) -> b (c p1 p2) t h w", p1=p, p2=p)


class UnfoldPatches(FoldPatches):
    """The inverse of FoldPatches."""

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch
        return rearrange(x, "b (c p1 p2) t h w -> b c t (h p1) (w p2)", p1=p, p2=p)


class Encoder(nn.Module):
    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        c, pad, rate = config.channels, config.padding, config.temporal_factor
        pixels = 3 * config.patch_size**2
        layers: list[nn.Module] = [
            FoldPatches(config.patch_size),
            SpatialConv(pixels, c(0), 3, pad),
        ]
        for level in range(config.levels):
            layers += [
                ResBlock(c(level), c(level), pad, rate) for _ in range(config.blocks_per_level)
            ]
            space, time = config.halves_space(level), config.halves_time(level)
            layers.append(Downsample(c(level), c(level + 1), pad, space, time, rate))
            rate //= 2 if time else 1
        top = c(config.levels)
        layers += [ResBlock(top, top, pad, rate) for _ in range(config.blocks_per_level)]
        layers += [ChannelNorm(top), nn.SiLU(), SpatialConv(top, config.latent_channels, 3, pad)]
        self.layers = nn.Sequential(*layers)

    def forward(self, video: Tensor) -> Tensor:
        return self.layers(video)


class Decoder(nn.Module):
    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        c, pad, rate = config.channels, config.padding, 1
        top = c(config.levels)
        layers: list[nn.Module] = [SpatialConv(config.latent_channels, top, 3, pad)]
        layers += [ResBlock(top, top, pad, rate) for _ in range(config.blocks_per_level)]
        for level in reversed(range(config.levels)):
            space, time = config.halves_space(level), config.halves_time(level)
            layers.append(Upsample(c(level + 1), c(level), pad, space, time, rate))
            rate *= 2 if time else 1
            layers += [
                ResBlock(c(level), c(level), pad, rate) for _ in range(config.blocks_per_level)
            ]
        pixels = 3 * config.patch_size**2
        layers += [ChannelNorm(c(0)), nn.SiLU(), SpatialConv(c(0), pixels, 3, pad)]
        layers.append(UnfoldPatches(config.patch_size))
        self.layers = nn.Sequential(*layers)
        # Latent frames of the past that a decoded frame depends on: the lookbacks add up.
        lookback = sum(m.lookback for m in self.modules() if isinstance(m, CausalTimeConv))
        self.history = math.ceil(lookback)

    def forward(self, latent: Tensor, cache: DecodeCache | None = None) -> Tensor:
        x = latent
        for layer in self.layers:
            x = layer(x, cache) if isinstance(layer, (ResBlock, Upsample)) else layer(x)
        return x


class VideoAutoencoder(nn.Module):
    """Encoder and decoder, plus per-channel latent statistics so latents have unit variance."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.register_buffer("latent_mean", torch.zeros(config.latent_channels))
        self.register_buffer("latent_std", torch.ones(config.latent_channels))

    def latent_frames(self, frames: int) -> int:
        """Latent frames for a clip of `frames` frames (frames must be 1 modulo tf)."""
        return 1 + (frames - 1) // self.config.temporal_factor

    def pixel_frames(self, latent_frames: int) -> int:
        return 1 + (latent_frames - 1) * self.config.temporal_factor

    def encode(self, video: Tensor) -> Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> normalised latent (B, C, 1 + (T-1)//tf, H/sf, W/sf)."""
        self._check_video(video)
        return (self.encoder(video) - self._stat(self.latent_mean)) / self._stat(self.latent_std)

    def decode(self, latent: Tensor, cache: DecodeCache | None = None) -> Tensor:
        """Normalised latent (B, C, Tl, h, w) -> video (B, 3, 1 + (Tl-1)*tf, h*sf, w*sf).

        With a cache (an empty dict at the start of a clip) latent continues the latent frames
        of the calls before, and gives Tl*tf frames: a clip decoded in pieces this way is the
        clip decoded whole, and each piece costs only its own frames."""
        z = latent * self._stat(self.latent_std) + self._stat(self.latent_mean)
        return self.decoder(z, cache)

    def forward(self, video: Tensor) -> Tensor:
        return self.decode(self.encode(video))

    def decode_cache(self, history: Tensor) -> DecodeCache:
        """A cache to decode the latent frames that follow `history` (B, C, Th, h, w) with
        `decode(latent, cache)`, exactly as decoding the whole sequence would give them: only
        its last `decoder.history` frames are decoded (and thrown away), as far back as a
        decoded frame looks. Empty history: an empty cache, for a clip that starts here."""
        cache: DecodeCache = {}
        if history.shape[2]:
            self.decode(history[:, :, -self.decoder.history :], cache)
        return cache

    def decode_stream(self, latent: Tensor, chunk_frames: int) -> Iterator[Tensor]:
        """Decode `chunk_frames` latent frames at a time; the chunks join up to decode(latent)."""
        cache: DecodeCache = {}
        for start in range(0, latent.shape[2], chunk_frames):
            yield self.decode(latent[:, :, start : start + chunk_frames], cache)

    @torch.no_grad()
    def set_latent_stats(self, latents: Tensor) -> None:
        """Fold the per-channel mean and std of `latents` (B, C, T, h, w), as `encode` returns
        them now, into the normalisation, so that `encode` gives zero mean and unit variance."""
        mean = latents.mean(dim=(0, 2, 3, 4))
        std = latents.std(dim=(0, 2, 3, 4)).clamp(min=1e-6)
        self.latent_mean += self.latent_std * mean
        self.latent_std *= std

    def _stat(self, values: Tensor) -> Tensor:
        return values.view(1, -1, 1, 1, 1)

    def _check_video(self, video: Tensor) -> None:
        _, channels, frames, height, width = video.shape
        tf, sf = self.config.temporal_factor, self.config.spatial_factor
        if channels != 3 or (frames - 1) % tf or height % sf or width % sf:
            raise ValueError(
                f"video of shape {tuple(video.shape)}: need 3 channels, frames = 1 mod {tf}, "
                f"height and width multiples of {sf}"
            )
