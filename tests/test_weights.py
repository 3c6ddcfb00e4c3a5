"""Model files: round trip, self-description, and clear errors for files that do not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from soravid.errors import BadInputError
from soravid.models.registry import MODEL_CONFIGS, ModelConfig
from soravid.weights import (
    CONFIG_KEY,
    VOCABULARY_KEY,
    load_model,
    model_id,
    read_metadata,
    resolve_device,
    save_model,
)
from tests.conftest import TINY_VOCABULARY, make_tiny_model


def test_round_trip_keeps_weights_config_and_vocabulary(tmp_path: Path) -> None:
    model, path = make_tiny_model(), tmp_path / "m.safetensors"
    save_model(model, path, {"trained_steps": "12"})
    loaded = load_model(path)
    assert loaded.config == model.config
    assert loaded.tokenizer.vocabulary == TINY_VOCABULARY
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert read_metadata(path)["trained_steps"] == "12"
    assert not loaded.training
    assert not list(tmp_path.glob("*.tmp"))


def test_half_precision_files_load_as_float32(tmp_path: Path) -> None:
    model = make_tiny_model()
    save_model(model, tmp_path / "full.safetensors")
    save_model(model, tmp_path / "half.safetensors", dtype=torch.float16)
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(half)
    weight = loaded.dit.final.proj.weight
    assert weight.dtype == torch.float32
    assert torch.equal(weight, model.dit.final.proj.weight.half().float())


def test_model_id_names_the_config_and_the_file_contents(tmp_path: Path) -> None:
    save_model(make_tiny_model(seed=0), tmp_path / "a.safetensors")
    save_model(make_tiny_model(seed=1), tmp_path / "b.safetensors")
    first = model_id(tmp_path / "a.safetensors")
    assert first.startswith("tiny@") and len(first) == len("tiny@") + 12
    assert first != model_id(tmp_path / "b.safetensors")


def rewrite(source: Path, target: Path, edit) -> None:
    """Copy a model file, letting `edit(tensors, metadata)` change it on the way."""
    with safe_open(str(source), framework="pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        metadata = handle.metadata()
    edit(tensors, metadata)
    save_file(tensors, str(target), metadata=metadata)


def test_missing_and_unexpected_keys_are_named(tiny_model_path: Path, tmp_path: Path) -> None:
    def edit(tensors: dict, metadata: dict) -> None:
        tensors["dit.extra.weight"] = tensors.pop("dit.final.proj.weight")

    rewrite(tiny_model_path, tmp_path / "bad.safetensors", edit)
    with pytest.raises(BadInputError, match="missing keys.*dit.final.proj.weight") as error:
        load_model(tmp_path / "bad.safetensors")
    assert "unexpected keys [dit.extra.weight]" in str(error.value)


def test_wrongly_shaped_tensors_are_named(tiny_model_path: Path, tmp_path: Path) -> None:
    def edit(tensors: dict, metadata: dict) -> None:
        tensors["dit.final.proj.bias"] = torch.zeros(3)

    rewrite(tiny_model_path, tmp_path / "bad.safetensors", edit)
    with pytest.raises(BadInputError, match=r"wrong shapes \[dit\.final\.proj\.bias \(3,\) !="):
        load_model(tmp_path / "bad.safetensors")


def test_a_config_the_weights_do_not_fit_is_refused(tiny_model_path: Path, tmp_path: Path):
    def edit(tensors: dict, metadata: dict) -> None:
        config = MODEL_CONFIGS["tiny"].to_dict()
        config["dit"]["depth"] = 3
        metadata[CONFIG_KEY] = json.dumps(config)

    rewrite(tiny_model_path, tmp_path / "deeper.safetensors", edit)
    with pytest.raises(BadInputError, match=r"missing keys \[dit\.blocks\.2\."):
        load_model(tmp_path / "deeper.safetensors")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t, m: m.pop(VOCABULARY_KEY), "no soravid config or vocabulary"),
        (lambda t, m: m.update({CONFIG_KEY: "{not json"}), "bad soravid config"),
        (lambda t, m: m.update({CONFIG_KEY: '{"name": "x", "depth": 3}'}), "bad soravid config"),
    ],
)
def test_bad_metadata_is_a_bad_input(tiny_model_path: Path, tmp_path: Path, edit, message: str):
    rewrite(tiny_model_path, tmp_path / "m.safetensors", edit)
    with pytest.raises(BadInputError, match=message):
        load_model(tmp_path / "m.safetensors")


def test_missing_and_foreign_files_are_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="model file not found"):
        load_model(tmp_path / "absent.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(BadInputError, match="not a safetensors model file"):
        load_model(junk)


def test_config_survives_json() -> None:
    for config in MODEL_CONFIGS.values():
        assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(BadInputError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BadInputError, match="not available"):
            resolve_device("cuda")
