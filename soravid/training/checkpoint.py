"""Training checkpoints: plain tensors, numbers and strings, written atomically.

Everything a resumed run needs to continue exactly: the stage and step, the weights, the EMA
weights, the optimizer, the data generator's state and torch's RNG state, and the loss history.
Loaded with `weights_only=True`, so a checkpoint can never run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(state: dict[str, Any], directory: Path) -> Path:
    path = Path(directory) / CHECKPOINT_NAME
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def load_checkpoint(directory: Path) -> dict[str, Any]:
    return torch.load(Path(directory) / CHECKPOINT_NAME, weights_only=True, map_location="cpu")


def encode_json(value: Any) -> str:
    """numpy generator states hold 128-bit integers: keep them as JSON text, not pickles."""
    return json.dumps(value)


def decode_json(text: str) -> Any:
    return json.loads(text)
