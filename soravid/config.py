"""Preset schema: what a preset YAML may say, and the resolved values generation runs on.

A preset file is merged onto `OmegaConf.structured(Preset)`, so an unknown key or a wrong type
is an error naming the file and the key. Resolution turns aspect + short side into pixels and
checks every value against the limits below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_SECONDS = 600.0
# Every canvas side is a multiple of this: the autoencoder's spatial factor times the DiT patch.
SIZE_MULTIPLE = 8
MIN_SIDE, MAX_SIDE = 32, 1024


@dataclass
class SamplerConfig:
    steps: int = 8  # Euler steps from noise (t=1) to data (t=0)
    guidance: float = 3.0  # classifier-free guidance scale; 1.0 turns guidance off


@dataclass
class Preset:
    """The schema of a preset YAML file. Either width+height or aspect+short_side sets the size."""

    description: str = ""
    seconds: float = 5.0
    fps: int = 8
    width: int | None = None
    height: int | None = None
    aspect: str | None = None  # "W:H", e.g. "16:9"
    short_side: int | None = None
    model: str = "embedded"  # "embedded" or a path to a .safetensors file
    sampler: SamplerConfig = field(default_factory=SamplerConfig)


@dataclass(frozen=True)
class ResolvedPreset:
    """Concrete, validated values for one generation."""

    name: str
    seconds: float
    fps: int
    width: int
    height: int
    model: str
    steps: int
    guidance: float

    @property
    def frames(self) -> int:
        return max(1, round(self.seconds * self.fps))
