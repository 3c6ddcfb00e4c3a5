"""How much each part of a caption moves a model's text encoders.

A DiT reads an attribute off the caption only if its text encoder keeps that word apart from
the attribute's other values. For n seeded random canonical captions, this swaps one
attribute's value for each of its others and measures how far the encoder's token outputs move
(the norm of the difference over the norm of the caption's own, on both captions' tokens), per
attribute, for the continuing DiT's encoder and, in a model with an opening DiT, the opening
one's. A DiT trained on windows alone, which reads shape and colour off its context frame,
lets those words go (README, "What a 2-hour run on such cores would have to cut").

    python benchmarks/text_probe.py --model soravid/weights/shapes.safetensors
    python benchmarks/text_probe.py --model runs/probe/model-ema.safetensors --out t.json
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from opening_probe import publish

from soravid.weights import load_model, model_id, resolve_model_path
from soravid.world import canonical_caption
from soravid.world.spec import ATTRIBUTE_VALUES, sample_attributes


def swapped_pairs(n: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Per attribute, (caption, the same caption with that attribute's value swapped) pairs."""
    rng = np.random.default_rng(seed)
    pairs: dict[str, list[tuple[str, str]]] = {name: [] for name in ATTRIBUTE_VALUES}
    for _ in range(n):
        attrs = sample_attributes(rng)
        for name, values in ATTRIBUTE_VALUES.items():
            for value in values:
                if value == getattr(attrs, name):
                    continue
                try:
                    other = replace(attrs, **{name: value})
                except ValueError:  # the object would take the background's colour
                    continue
                pairs[name].append((canonical_caption(attrs), canonical_caption(other)))
    return pairs


@torch.no_grad()
def token_shift(model, pairs: list[tuple[str, str]], opening: bool) -> float:
    """Mean relative distance between the two captions' token outputs (B, L, D)."""
    first = model.encode_text([a for a, _ in pairs], opening=opening)
    second = model.encode_text([b for _, b in pairs], opening=opening)
    mask = (first.mask & second.mask)[..., None]  # (B, L, 1): tokens both captions have
    difference = ((first.tokens - second.tokens) * mask).flatten(1).norm(dim=1)
    return float((difference / (first.tokens * mask).flatten(1).norm(dim=1)).mean())


def text_shifts(path: Path, n: int, seed: int) -> dict:
    model = load_model(path).eval()
    pairs = swapped_pairs(n, seed)
    encoders = {"dit": False} | ({"opening": True} if model.opening_dit is not None else {})
    return {
        "model": model_id(path),
        "n": n,
        "seed": seed,
        "token_shift": {
            encoder: {name: round(token_shift(model, pairs[name], opening), 3) for name in pairs}
            for encoder, opening in encoders.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded", help="embedded or a .safetensors file")
    parser.add_argument("--n", type=int, default=20, help="random captions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args()
    publish(text_shifts(resolve_model_path(args.model), args.n, args.seed), args.out)


if __name__ == "__main__":
    main()
