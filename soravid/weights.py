"""Model files: safetensors with the model config and vocabulary in the file's metadata.

A model file is self-describing, so `--model PATH` needs nothing else: the metadata key
"soravid.config" holds the ModelConfig as JSON and "soravid.vocabulary" the tokenizer's words.
Nothing is ever unpickled. Also here: which device to run on, and bfloat16 autocast on GPUs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from soravid.errors import BadInputError
from soravid.models.registry import ModelConfig, SoravidModel, build_model

CONFIG_KEY, VOCABULARY_KEY = "soravid.config", "soravid.vocabulary"
TRAINING_KEY = "soravid.training"  # how the weights were trained (recipe, time, losses)
DEVICES = ("auto", "cpu", "cuda", "mps")


def embedded_model_path() -> Path:
    """Where the embedded default model lives inside the package (absent until one is trained)."""
    return Path(__file__).parent / "weights" / "shapes.safetensors"


def resolve_model_path(model: str) -> Path:
    """The file behind a model name: "embedded" or a path."""
    if model != "embedded":
        return Path(model)
    path = embedded_model_path()
    if not path.is_file():
        raise BadInputError("no embedded model is bundled in this build; pass --model PATH")
    return path


def save_model(
    model: SoravidModel,
    path: Path,
    metadata: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write the weights and recipe atomically: a temp file, then a rename into place.

    `dtype` (e.g. torch.float16, half the size) stores the floating-point tensors in that type;
    loading casts them back to the model's float32.
    """
    path = Path(path)
    tensors = {name: _stored(t, dtype) for name, t in model.state_dict().items()}
    header = dict(metadata or {})
    header[CONFIG_KEY] = json.dumps(model.config.to_dict())
    header[VOCABULARY_KEY] = json.dumps(model.tokenizer.vocabulary)
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(temp), metadata=header)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a model file; BadInputError if it is missing or not a safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise BadInputError(f"not a safetensors model file: {path} ({error})") from None


def model_header(path: Path) -> tuple[ModelConfig, list[str]]:
    """The config and vocabulary a model file describes, without reading its weights."""
    path = Path(path)
    return _recipe(path, read_metadata(path))


def load_model(path: Path, device: str | torch.device = "cpu") -> SoravidModel:
    """Build the model a file describes and load its weights, in eval mode on `device`."""
    path = Path(path)
    config, vocabulary = _recipe(path, read_metadata(path))
    model = build_model(config, vocabulary)
    with safe_open(str(path), framework="pt") as handle:
        state = {name: handle.get_tensor(name) for name in handle.keys()}
    _check_keys(path, config.name, state, model.state_dict())
    model.load_state_dict(state)
    return model.to(resolve_device(device)).eval()


def _check_keys(path: Path, name: str, found: dict, expected: dict) -> None:
    """BadInputError naming missing, unexpected and wrongly shaped tensors, if any."""
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    reshaped = [
        f"{key} {tuple(found[key].shape)} != {tuple(expected[key].shape)}"
        for key in found
        if key in expected and found[key].shape != expected[key].shape
    ]
    if missing or unexpected or reshaped:
        raise BadInputError(
            f"model file {path} does not match its config {name!r}: missing keys "
            f"{_names(missing)}, unexpected keys {_names(unexpected)}, "
            f"wrong shapes {_names(reshaped)}"
        )


def model_id(path: Path) -> str:
    """`<config name>@<first 12 hex digits of the file's sha256>`."""
    config, _ = _recipe(Path(path), read_metadata(Path(path)))
    return f"{config.name}@{file_sha256(Path(path))[:12]}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(path: Path) -> str:
    """sha256 of what the model computes: its tensors (names, dtypes, shapes, bytes), config and
    vocabulary, not the training record, which holds the run's time. Two runs of a recipe that
    train the same weights share it; their files' sha256 differ by the seconds they took."""
    with Path(path).open("rb") as handle:
        # safetensors: an 8-byte little-endian header length, the JSON header, then the bytes
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
        header.get("__metadata__", {}).pop(TRAINING_KEY, None)
        digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_model(path: Path) -> dict[str, Any]:
    """What `soravid info` shows of a model file: id, hash, size, parameters, windows and how
    it was trained. Hashes the file's bytes, but loads no tensor and builds no model."""
    path = Path(path)
    metadata = read_metadata(path)
    config, vocabulary = _recipe(path, metadata)
    with safe_open(str(path), framework="pt") as handle:
        parameters = sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())
    return {
        "path": str(path),
        "id": model_id(path),
        "sha256": file_sha256(path),
        "weights_sha256": weights_sha256(path),
        "bytes": path.stat().st_size,
        "config": config.name,
        "parameters": parameters,
        "vocabulary": len(vocabulary),
        "window_frames": config.window_frames,
        "context_frames": config.context_frames,
        "training": json.loads(metadata[TRAINING_KEY]) if TRAINING_KEY in metadata else None,
    }


def resolve_device(name: str | torch.device) -> torch.device:
    """auto picks cuda, then mps, then cpu; naming an absent accelerator is a BadInputError."""
    if isinstance(name, torch.device):
        return name
    if name not in DEVICES:
        raise BadInputError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if name == "auto":
        return torch.device(next(kind for kind in ("cuda", "mps", "cpu") if available[kind]))
    if not available[name]:
        raise BadInputError(f"device {name!r} is not available on this machine")
    return torch.device(name)


def autocast(device: torch.device, training: bool = False) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on GPUs. On CPU only for inference, and only where the CPU multiplies
    bfloat16 natively (AVX512-BF16 or AMX): there it runs the DiT and the decoder about 1.5x
    faster (velocity within 1%, pixels within 3 levels); emulated bfloat16 would be slower
    than float32, and CPU training stays in float32."""
    if device.type in ("cuda", "mps"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if device.type == "cpu" and not training and native_cpu_bfloat16():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def native_cpu_bfloat16() -> bool:
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private; absent: False
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def _stored(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    tensor = tensor.detach().cpu().contiguous()
    return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _recipe(path: Path, metadata: dict[str, str]) -> tuple[ModelConfig, list[str]]:
    if CONFIG_KEY not in metadata or VOCABULARY_KEY not in metadata:
        raise BadInputError(f"model file {path} has no soravid config or vocabulary metadata")
    try:
        config = ModelConfig.from_dict(json.loads(metadata[CONFIG_KEY]))
        vocabulary = json.loads(metadata[VOCABULARY_KEY])
    except (TypeError, ValueError) as error:
        raise BadInputError(f"model file {path} has a bad soravid config: {error}") from None
    return config, vocabulary


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
    return f"[{shown}]"
