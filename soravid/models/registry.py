"""Named model configurations and `SoravidModel`, which bundles the parts one model is made of.

A model is: a tokenizer (its vocabulary), a text encoder, a DiT and a video autoencoder, plus
how generation is chunked: `window_frames` latent frames per chunk, of which `context_frames`
are context carried over from the chunk before, and how it samples.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor, nn

from soravid.models.autoencoder import AutoencoderConfig, VideoAutoencoder
from soravid.models.dit import ContextCache, DiT, DiTConfig
from soravid.models.layers import count_parameters
from soravid.models.placement import placement_map
from soravid.models.text import TextEmbedding, TextEncoder, TextEncoderConfig, Tokenizer


@dataclass
class ModelConfig:
    name: str
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    window_frames: int = 11  # latent frames per generation chunk
    context_frames: int = 3  # of those, clean ones carried over from the previous chunk
    # Latent frames the first chunk of a new clip makes alone, from noise (0: a whole window).
    # The next chunk continues them. Where the object is gets decided in one frame, which a
    # small model learns far sooner than deciding it across a window of a moving object.
    first_frames: int = 0
    # How this model samples best, set when it is exported after training:
    schedule_shift: float = 1.0  # flow.time_schedule shift; > 1 spends more steps at high noise
    context_time: float = 0.0  # flow time the carried-over context is held at (0 = clean)
    # For a DiT with placement: a new clip's subject starts at least this share of the short
    # side from every edge (the shapes world's large objects are 0.38 wide).
    placement_margin: float = 0.2
    # A second DiT and text encoder, of the same shapes, make a new clip's first_frames (from
    # noise); the DiT continues them. Text to first frame, then first frame to video, as Emu
    # Video factorises text-to-video: the opening is where shape is decided, and one network
    # for both jobs drew small squares as circles (README, "An opening DiT"). Trained last,
    # from the DiT and text encoder, on openings alone (recipe stage `opening`).
    opening_dit: bool = False

    def __post_init__(self) -> None:
        if self.dit.latent_channels != self.autoencoder.latent_channels:
            raise ValueError(f"model {self.name}: DiT and autoencoder latent channels differ")
        if self.dit.text_width != self.text.width:
            raise ValueError(f"model {self.name}: DiT text_width differs from the text width")
        if not 0 <= self.context_frames < self.window_frames:
            raise ValueError(f"model {self.name}: need 0 <= context_frames < window_frames")
        if not 0 <= self.first_frames < self.window_frames:
            raise ValueError(f"model {self.name}: need 0 <= first_frames < window_frames")
        if self.opening_dit and not self.first_frames:
            raise ValueError(f"model {self.name}: an opening DiT needs first_frames")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of to_dict; an unknown or missing key raises TypeError naming it."""
        parts = {"autoencoder": AutoencoderConfig, "text": TextEncoderConfig, "dit": DiTConfig}
        values = {
            key: parts[key](**value) if key in parts else value for key, value in data.items()
        }
        return cls(**values)


def _config(
    name: str,
    ae: dict,
    text: dict,
    dit: dict,
    window: int,
    context: int,
    first: int = 0,
    opening_dit: bool = False,
) -> ModelConfig:
    return ModelConfig(
        name=name,
        autoencoder=AutoencoderConfig(**ae),
        text=TextEncoderConfig(**text),
        dit=DiTConfig(latent_channels=ae["latent_channels"], text_width=text["width"], **dit),
        window_frames=window,
        context_frames=context,
        first_frames=first,
        opening_dit=opening_dit,
    )


# The embedded model: a clip opens with its first latent frame (frame 0) alone, then
# windows of 4 latent frames, 1 of them context, so each chunk adds 12 frames (1.5 s at
# 8 fps) knowing where the object was and, from the 4 frames that latent frame covers,
# how it moved. It is trained with 1 or 2 context frames; 2 at generation scored the same
# (eval, n=50) and cost half as much again per frame made. Tokens of 16x16
# pixels (4x4 latent cells), 24 per latent frame at 96x64: a quarter of the tokens of 8x8
# ones, so four times the windows per second of training; the object still spans one to
# four tokens and moves half a token per latent frame. Sides must be multiples of 16.
# Text conditions through adaLN only (no cross-attention): captions are a few attributes.
SHAPES_AE = {"base_channels": 32, "latent_channels": 8, "patch_size": 2}
SHAPES_TEXT = {"width": 128, "depth": 2, "heads": 4, "max_tokens": 24}
SHAPES_DIT = {"width": 192, "depth": 6, "heads": 4, "patch": (1, 4, 4), "cross_attention": False}
SHAPES_CHUNKS = {"window": 4, "context": 1, "first": 1}


# For tests: a few tens of thousands of parameters, milliseconds per step.
TINY_AE = {"base_channels": 4, "latent_channels": 4}
TINY_TEXT = {"width": 16, "depth": 1, "heads": 2, "max_tokens": 16}
TINY_DIT = {
    "width": 24,
    "depth": 2,
    "heads": 2,
    "mlp_ratio": 2.0,
    "causal_context": True,
    "guidance_embedding": True,
    "placement": True,
    "last_context_input": True,
    "edge_distance": True,
}
TINY_CHUNKS = {"window": 3, "context": 1, "first": 1}


MODEL_CONFIGS: dict[str, ModelConfig] = {
    "tiny": _config("tiny", ae=TINY_AE, text=TINY_TEXT, dit=TINY_DIT, **TINY_CHUNKS),
    # For tests of the opening stage: tiny with an opening DiT (its DiT cannot take the
    # guidance scale then).
    "tiny-opening": _config(
        "tiny-opening",
        ae=TINY_AE,
        text=TINY_TEXT,
        dit=TINY_DIT | {"guidance_embedding": False},
        **TINY_CHUNKS,
        opening_dit=True,
    ),
    "shapes": _config("shapes", ae=SHAPES_AE, text=SHAPES_TEXT, dit=SHAPES_DIT, **SHAPES_CHUNKS),
    # The shapes model with a placement map on a clip's first latent frame (models/placement.py):
    # the sampler, not the noise, says where the object starts.
    "shapes-placed": _config(
        "shapes-placed",
        ae=SHAPES_AE,
        text=SHAPES_TEXT,
        dit=SHAPES_DIT | {"placement": True},
        **SHAPES_CHUNKS,
    ),
    # shapes-placed with an opening DiT (ModelConfig.opening_dit).
    "shapes-opening": _config(
        "shapes-opening",
        ae=SHAPES_AE,
        text=SHAPES_TEXT,
        dit=SHAPES_DIT | {"placement": True},
        **SHAPES_CHUNKS,
        opening_dit=True,
    ),
    # shapes-placed with each latent cell's distance to the canvas's edges as input (DiT
    # edge_distance), so that it can know where a bouncing object must turn.
    "shapes-walls": _config(
        "shapes-walls",
        ae=SHAPES_AE,
        text=SHAPES_TEXT,
        dit=SHAPES_DIT | {"placement": True, "edge_distance": True},
        **SHAPES_CHUNKS,
    ),
    # shapes-placed with the last context frame beside every frame it makes (DiT
    # last_context_input), so that continuing a clip can be a local copy-and-move; in a
    # 1,000-step probe (before its context was made causal) openings still crowded continuation
    # out (README, "Where the loss goes"). Its context is causal, so generation runs it once
    # per chunk (a quarter of each window's tokens).
    "shapes-context": _config(
        "shapes-context",
        ae=SHAPES_AE,
        text=SHAPES_TEXT,
        dit=SHAPES_DIT | {"placement": True, "last_context_input": True, "causal_context": True},
        **SHAPES_CHUNKS,
    ),
    "S": _config(
        "S",
        ae={"base_channels": 64, "latent_channels": 16, "blocks_per_level": 2},
        text={"width": 256, "depth": 4, "heads": 4, "max_tokens": 32},
        dit={"width": 384, "depth": 12, "heads": 8, "causal_context": True},
        window=16,
        context=4,
        first=1,
    ),
    "B": _config(
        "B",
        ae={"base_channels": 96, "latent_channels": 16, "blocks_per_level": 2},
        text={"width": 512, "depth": 6, "heads": 8, "max_tokens": 32},
        dit={"width": 768, "depth": 12, "heads": 8, "causal_context": True},
        window=16,
        context=4,
        first=1,
    ),
}


class SoravidModel(nn.Module):
    """Tokenizer, text encoder, DiT and autoencoder of one model."""

    def __init__(self, config: ModelConfig, tokenizer: Tokenizer) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.text_encoder = TextEncoder(config.text, vocab_size=len(tokenizer))
        self.dit = DiT(config.dit)
        self.autoencoder = VideoAutoencoder(config.autoencoder)
        # Built last, so the other networks start as in the same model without them.
        self.opening_text_encoder, self.opening_dit = None, None
        if config.opening_dit:
            self.opening_text_encoder = TextEncoder(config.text, vocab_size=len(tokenizer))
            self.opening_dit = DiT(config.dit)

    def networks(self, opening: bool = False) -> tuple[TextEncoder, DiT]:
        """The text encoder and DiT that make a new clip's first frames with `opening` (the
        opening ones, where the model has them), else the ones that continue frames."""
        if opening and self.config.opening_dit:
            return self.opening_text_encoder, self.opening_dit
        return self.text_encoder, self.dit

    def encode_text(self, prompts: list[str], opening: bool = False) -> TextEmbedding:
        """Prompts ("" for the unconditional caption) -> what the DiT is conditioned on; with
        `opening`, the opening DiT where the model has one (velocity)."""
        ids, mask = self.tokenizer.encode(prompts, self.config.text.max_tokens)
        device = self.text_encoder.token_embedding.weight.device
        ids, mask = ids.to(device), mask.to(device)
        text_encoder, _ = self.networks(opening)
        tokens, pooled = text_encoder(ids, mask)
        return TextEmbedding(tokens=tokens, mask=mask, pooled=pooled)

    def velocity(
        self,
        x: Tensor,
        t: Tensor,
        text: TextEmbedding,
        context_frames: Tensor | int = 0,
        guidance: Tensor | None = None,
        placement: Tensor | None = None,
        opening: bool = False,
    ) -> Tensor:
        """The DiT's flow velocity for latents x (B, C, T, h, w) at per-frame times t (B, T),
        the first `context_frames` of them given as context; `guidance` (B,) for a DiT that
        takes the guidance scale (DiTConfig.guidance_embedding); `placement` (B, 1, T, h, w)
        where a new clip's subject starts, for a DiT that takes it (DiTConfig.placement).
        `opening`: x is a new clip's first frames, which the opening DiT makes where the
        model has one (conditioned on encode_text(..., opening=True))."""
        _, dit = self.networks(opening)
        return dit(x, t, text.tokens, text.mask, text.pooled, context_frames, guidance, placement)

    def placement(self, centres: Tensor, grid: tuple[int, int], frames: int) -> Tensor | None:
        """Maps (B, 1, frames, h, w) of where subjects start, pixel centres (B, 2) as (x, y), on
        this model's (h, w) latent grid and device; None for a DiT that takes no map."""
        if not self.config.dit.placement:
            return None
        device = self.text_encoder.token_embedding.weight.device
        cell = self.config.autoencoder.spatial_factor
        return placement_map(centres, grid, cell, frames).to(device)

    def cache_context(
        self, context: Tensor, t: Tensor, text: TextEmbedding, guidance: Tensor | None = None
    ) -> ContextCache:
        """What `velocity_after` needs of context frames (B, C, Tc, h, w) at times t (B, Tc);
        only for a DiT with causal_context."""
        return self.dit.cache_context(context, t, text.tokens, text.mask, text.pooled, guidance)

    def velocity_after(
        self,
        cache: ContextCache,
        x: Tensor,
        t: Tensor,
        text: TextEmbedding,
        guidance: Tensor | None = None,
    ) -> Tensor:
        """The velocity of frames x (B, C, T, h, w) at times t (B, T) after a cached context."""
        return self.dit.forward_after(cache, x, t, text.tokens, text.mask, text.pooled, guidance)

    def parameter_counts(self) -> dict[str, int]:
        parts = {
            "text_encoder": self.text_encoder,
            "dit": self.dit,
            **(
                {"opening_text_encoder": self.opening_text_encoder, "opening_dit": self.opening_dit}
                if self.config.opening_dit
                else {}
            ),
            "autoencoder": self.autoencoder,
        }
        counts = {name: count_parameters(part) for name, part in parts.items()}
        return counts | {"total": sum(counts.values())}


def build_model(config: ModelConfig | str, vocabulary: list[str]) -> SoravidModel:
    """A freshly initialised model from a config or the name of one in MODEL_CONFIGS."""
    if isinstance(config, str):
        if config not in MODEL_CONFIGS:
            raise ValueError(f"unknown model config {config!r}; known: {sorted(MODEL_CONFIGS)}")
        config = copy.deepcopy(MODEL_CONFIGS[config])
    return SoravidModel(config, Tokenizer(vocabulary))
