"""Shared fixtures: a tiny random soravid model, in memory and as a .safetensors file."""

from __future__ import annotations

import copy
import dataclasses
import signal
from pathlib import Path

import pytest
import torch

from soravid.models.registry import MODEL_CONFIGS, SoravidModel, build_model
from soravid.weights import save_model

# Tests run tiny models, for which a second thread gains nothing, and while another job keeps
# the cores busy, two spinning OpenMP threads made them 20 times slower.
torch.set_num_threads(1)

TINY_VOCABULARY = (
    "a large small red green blue white yellow circle square triangle moving bouncing still "
    "left right up down on black gray navy background"
).split()


def make_tiny_model(seed: int = 0, **dit: object) -> SoravidModel:
    """The `tiny` config (its DiT's settings replaced by `dit`), randomly initialised, with
    random values also where adaLN-Zero starts at zero, so that its output depends on its
    input as a trained model's would."""
    torch.manual_seed(seed)
    config = copy.deepcopy(MODEL_CONFIGS["tiny"])
    config.dit = dataclasses.replace(config.dit, **dit)
    model = build_model(config, TINY_VOCABULARY)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.1)
    return model.eval()


@pytest.fixture
def tiny_model() -> SoravidModel:
    return make_tiny_model()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model saved as a .safetensors file: pass it as `--model PATH`."""
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_model(make_tiny_model(), path)
    return path


def default_sigint() -> None:
    """Popen preexec_fn: Ctrl-C acts in the child as in a terminal, even when this test run
    ignores SIGINT (as a shell without job control starts its background jobs)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
