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
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the model whose networks are kept")
    parser.add_argument("donor", type=Path, help="the model the named networks come from")
    parser.add_argument("out", type=Path)
    parser.add_argument("prefixes", nargs="+", help="e.g. dit. text_encoder. opening_dit.")
    args = parser.parse_args()

    tensors, donor = load_file(args.model), load_file(args.donor)
    encoder = [name for name in tensors if name.startswith("autoencoder.encoder.")]
    if not all(torch.equal(tensors[name], donor[name]) for name in encoder):
        parser.error("the two models' autoencoder encoders differ: their latents are not alike")
    swapped = [name for name in tensors if name.startswith(tuple(args.prefixes))]
    if not swapped:
        parser.error(f"no tensor starts with {' or '.join(args.prefixes)}")
    tensors.update({name: donor[name] for name in swapped})
    # The file keeps the kept model's config and training record; its id is its own hash.
    save_file(tensors, args.out, metadata=safe_open(args.model, "pt").metadata())
    print(f"{len(swapped)} tensors from {args.donor} -> {args.out}")


if __name__ == "__main__":
    main()
