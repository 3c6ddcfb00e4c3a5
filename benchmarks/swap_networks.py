"""A model file with some of its networks taken from another: which network a gap comes from.

Both files must share the autoencoder's encoder (the same autoencoder stage), so that every
DiT reads and writes the same latents; the networks are named by their prefix in the file.

    python benchmarks/swap_networks.py runs/windows-tune/shapes.safetensors \\
        soravid/weights/shapes.safetensors runs/shipped-dit.safetensors dit. text_encoder.
    soravid eval --n 100 --model runs/shipped-dit.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from soravid.weights import load_model, read_metadata, save_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the model whose networks are kept")
    parser.add_argument("donor", type=Path, help="the model the named networks come from")
    parser.add_argument("out", type=Path)
    parser.add_argument("prefixes", nargs="+", help="e.g. dit. text_encoder. opening_dit.")
    args = parser.parse_args()

    model, donor = load_model(args.model), load_model(args.donor)
    weights, donor_weights = model.state_dict(), donor.state_dict()
    encoder = [name for name in weights if name.startswith("autoencoder.encoder.")]
    if not all(torch.equal(weights[name], donor_weights[name]) for name in encoder):
        parser.error("the two models' autoencoder encoders differ: their latents are not alike")
    swapped = [name for name in weights if name.startswith(tuple(args.prefixes))]
    if not swapped:
        parser.error(f"no tensor starts with {' or '.join(args.prefixes)}")
    model.load_state_dict(weights | {name: donor_weights[name] for name in swapped})
    # The kept model's training record stays in the file; its id is its own hash. Float16, as
    # exported models are stored: the loaded float32 weights go back to the same bits.
    save_model(model, args.out, read_metadata(args.model), dtype=torch.float16)
    print(f"{len(swapped)} tensors from {args.donor} -> {args.out}")


if __name__ == "__main__":
    main()
