"""The shapes world's contract as data: palette, shapes, sizes, motions, and a clip's attributes.

Every length is a fraction of the canvas' short side `S = min(width, height)`; see
soravid/world/SHAPES_WORLD.md, the contract this module follows value for value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np

PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "navy": (16, 24, 96),
    "white": (255, 255, 255),
    "red": (230, 30, 30),
    "green": (30, 200, 60),
    "blue": (40, 100, 255),
    "yellow": (245, 225, 40),
    "magenta": (225, 50, 225),
    "cyan": (40, 215, 225),
    "orange": (250, 140, 20),
}
BACKGROUND_COLOURS = ("black", "gray", "navy", "white")
OBJECT_COLOURS = ("white", "red", "green", "blue", "yellow", "magenta", "cyan", "orange")
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
MOTIONS = ("moving left", "moving right", "moving up", "moving down", "bouncing", "still")

SIZE_FRACTION = {"small": 0.22, "large": 0.38}  # object extent D as a fraction of S
SPEED_FRACTION = 0.25  # object speed as a fraction of S per second
# Unit direction of each straight motion in image coordinates (x right, y down).
DIRECTIONS = {
    "moving left": (-1.0, 0.0),
    "moving right": (1.0, 0.0),
    "moving up": (0.0, -1.0),
    "moving down": (0.0, 1.0),
}
BOUNCE_COMPONENT = 1 / math.sqrt(2)  # bouncing moves at (±v/√2, ±v/√2)

WINDOW_SECONDS = 5.0  # the judge's window: a long clip is as good as its worst window
OBJECT_DISTANCE = 60.0  # RGB distance from the background beyond which a pixel is object


@dataclass(frozen=True)
class WorldAttributes:
    """What a caption says about a clip. None means the caption left it out: any value is right."""

    background: str | None = None
    colour: str | None = None
    shape: str | None = None
    size: str | None = None
    motion: str | None = None

    def __post_init__(self) -> None:
        for name, allowed in ATTRIBUTE_VALUES.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if self.colour is not None and self.colour == self.background:
            raise ValueError(f"the object cannot be the background's colour ({self.colour})")

    @property
    def is_complete(self) -> bool:
        return all(getattr(self, f.name) is not None for f in fields(self))

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


# Every value each attribute can take, in the contract's order.
ATTRIBUTE_VALUES = {
    "background": BACKGROUND_COLOURS,
    "colour": OBJECT_COLOURS,
    "shape": SHAPES,
    "size": SIZES,
    "motion": MOTIONS,
}
ATTRIBUTE_NAMES = tuple(ATTRIBUTE_VALUES)


# Probabilities of chosen attribute values: {attribute: {value: probability}}.
Emphasis = Mapping[str, Mapping[str, float]]


def sample_attributes(
    rng: np.random.Generator, emphasis: Emphasis | None = None
) -> WorldAttributes:
    """Random complete attributes; the object's colour never equals the background. Uniform,
    unless `emphasis` gives values of an attribute their own probability, the attribute's other
    values sharing the rest alike: {"background": {"gray": 0.5}} draws gray half the time."""
    if not emphasis:  # the draws of every run before emphasis
        background = str(rng.choice(BACKGROUND_COLOURS))
        colours = [c for c in OBJECT_COLOURS if c != background]
        return WorldAttributes(
            background=background,
            colour=str(rng.choice(colours)),
            shape=str(rng.choice(SHAPES)),
            size=str(rng.choice(SIZES)),
            motion=str(rng.choice(MOTIONS)),
        )
    check_emphasis(emphasis)
    drawn: dict[str, str] = {}
    for name, values in ATTRIBUTE_VALUES.items():
        if name == "colour":
            values = tuple(c for c in values if c != drawn["background"])
        weights = emphasis.get(name, {})
        named = sum(weights.get(value, 0.0) for value in values)
        others = sum(value not in weights for value in values)
        share = (1.0 - named) / others if others else 0.0
        probabilities = np.array([weights.get(value, share) for value in values])
        drawn[name] = str(rng.choice(values, p=probabilities / probabilities.sum()))
    return WorldAttributes(**drawn)


def check_emphasis(emphasis: Emphasis) -> None:
    """Raise ValueError unless `emphasis` names attributes and their values, with
    probabilities in [0, 1] that add up to at most 1 per attribute."""
    for name, weights in emphasis.items():
        if name not in ATTRIBUTE_VALUES:
            known = ", ".join(ATTRIBUTE_NAMES)
            raise ValueError(f"emphasis: no attribute {name!r}; one of {known}")
        for value, probability in weights.items():
            if value not in ATTRIBUTE_VALUES[name]:
                raise ValueError(f"emphasis: {name} has no value {value!r}")
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"emphasis: {name} {value!r} needs a probability in [0, 1]")
        total = sum(weights.values())
        if total > 1.0 + 1e-9 or (total == 0 and len(weights) == len(ATTRIBUTE_VALUES[name])):
            raise ValueError(f"emphasis: {name}'s probabilities must add up to (0, 1]")


def object_extent(size: str, width: int, height: int) -> float:
    """The object's extent D in pixels on a width x height canvas."""
    return SIZE_FRACTION[size] * min(width, height)


def speed(width: int, height: int) -> float:
    """The object's speed v in pixels per second on a width x height canvas."""
    return SPEED_FRACTION * min(width, height)
