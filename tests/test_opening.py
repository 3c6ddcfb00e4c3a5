"""The opening DiT: its training stage, starting that stage from an exported model, and the
pipeline making only a new clip's first frames with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from soravid.cli import app
from soravid.config import ResolvedPreset
from soravid.errors import BadInputError
from soravid.models.registry import MODEL_CONFIGS, build_model
from soravid.pipeline import GenerationRequest, Pipeline
from soravid.training.checkpoint import load_checkpoint
from soravid.training.export import EXPORT_DTYPE, export_model
from soravid.training.recipes import DiTStage, get_recipe
from soravid.training.trainer import new_state, train
from soravid.weights import TRAINING_KEY, load_model, read_metadata
from soravid.world import CAPTION_VOCABULARY
from tests.test_training import Interrupt, stop_at


@pytest.fixture(scope="module")
def opening_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("opening-run")
    train(get_recipe("tiny-opening"), run)
    return run


@pytest.fixture
def without_opening(monkeypatch: pytest.MonkeyPatch):
    """tiny-opening's recipe and model without the opening DiT and its stage: the run that
    --from starts from."""
    config = dataclasses.replace(
        MODEL_CONFIGS["tiny-opening"], name="tiny-no-opening", opening_dit=False
    )
    monkeypatch.setitem(MODEL_CONFIGS, "tiny-no-opening", config)
    recipe = get_recipe("tiny-opening")
    return dataclasses.replace(
        recipe, model="tiny-no-opening", opening=DiTStage(steps=0), opening_tune=DiTStage(steps=0)
    )


def test_the_opening_stage_trains_the_opening_networks_alone_from_the_others(
    opening_run: Path, tmp_path: Path
) -> None:
    with pytest.raises(Interrupt):
        train(get_recipe("tiny-opening"), tmp_path, on_progress=stop_at("dit", 3))
    end_of_dit = load_checkpoint(tmp_path)  # stage 2's last step: its final EMA weights
    assert (end_of_dit["stage"], end_of_dit["step"]) == ("dit", 3)
    model = export_model(opening_run, tmp_path / "model.safetensors")
    for name, tensor in end_of_dit["ema"].items():  # the DiT and text encoder, as exported
        expected = tensor.to(EXPORT_DTYPE).float()
        assert torch.equal(model.get_parameter(name).data, expected), name
    for opening, first in [
        (model.opening_dit, model.dit),
        (model.opening_text_encoder, model.text_encoder),
    ]:
        pairs = zip(opening.parameters(), first.parameters(), strict=True)
        assert any(not torch.equal(trained, start) for trained, start in pairs)
    stages = [stage for stage, _, _ in load_checkpoint(opening_run)["losses"]]
    assert stages.count("opening") == get_recipe("tiny-opening").opening.steps
    assert stages.count("opening_tune") == get_recipe("tiny-opening").opening_tune.steps


def test_resume_in_the_opening_stage_continues_exactly(opening_run: Path, tmp_path: Path) -> None:
    with pytest.raises(Interrupt):
        train(get_recipe("tiny-opening"), tmp_path, on_progress=stop_at("opening", 1))
    train(get_recipe("tiny-opening"), tmp_path, resume=True)
    straight, resumed = load_checkpoint(opening_run), load_checkpoint(tmp_path)
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert straight["losses"] == resumed["losses"]


def test_a_run_from_an_exported_model_is_the_run_that_went_on(
    opening_run: Path, tmp_path: Path, without_opening
) -> None:
    train(without_opening, tmp_path / "first", on_progress=None)
    source = export_model(tmp_path / "first", tmp_path / "first.safetensors")
    train(get_recipe("tiny-opening"), tmp_path / "rest", start_from=tmp_path / "first.safetensors")
    went_on = export_model(opening_run, tmp_path / "went-on.safetensors")
    started = export_model(tmp_path / "rest", tmp_path / "started.safetensors")
    for name, tensor in went_on.state_dict().items():
        assert torch.equal(tensor, started.state_dict()[name]), name
    provenance = read_metadata(tmp_path / "started.safetensors")[TRAINING_KEY]
    assert "started_from" in provenance and '"dit"' in provenance  # the source's losses too
    assert source.opening_dit is None


def test_the_opening_tune_stage_from_an_exported_model_is_the_run_that_went_on(
    opening_run: Path, tmp_path: Path
) -> None:
    """tiny-opening without its last stage, exported, then that stage alone from the file:
    the weights of the run that went on, which differ from the file's in the opening DiT and
    its text encoder alone."""
    recipe = get_recipe("tiny-opening")
    train(dataclasses.replace(recipe, opening_tune=DiTStage(steps=0)), tmp_path / "first")
    source = export_model(tmp_path / "first", tmp_path / "first.safetensors").state_dict()
    train(recipe, tmp_path / "rest", start_from=tmp_path / "first.safetensors")
    started = export_model(tmp_path / "rest", tmp_path / "started.safetensors").state_dict()
    went_on = export_model(opening_run, tmp_path / "went-on.safetensors").state_dict()
    for name, tensor in went_on.items():
        assert torch.equal(tensor, started[name]), name
    tuned = {name for name, tensor in source.items() if not torch.equal(tensor, started[name])}
    assert any(name.startswith("opening_dit.") for name in tuned)
    assert all(name.startswith(("opening_dit.", "opening_text_encoder.")) for name in tuned)


def test_starting_from_a_model_of_another_recipe_is_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    tiny = tmp_path / "tiny"
    train(get_recipe("tiny"), tiny)
    export_model(tiny, tmp_path / "tiny.safetensors")
    arguments = ["train", "--recipe", "tiny-opening", "--out", str(tmp_path / "run")]
    result = runner.invoke(app, [*arguments, "--from", str(tmp_path / "tiny.safetensors")])
    assert result.exit_code == 2
    assert "--from takes a model" in result.output
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    both = runner.invoke(app, [*arguments, "--resume", "--from", str(tmp_path / "x")])
    assert both.exit_code == 2 and "--resume alone" in both.output


def test_a_recipe_has_an_opening_stage_exactly_for_a_model_with_an_opening_dit() -> None:
    recipe = dataclasses.replace(get_recipe("tiny-opening"), opening=DiTStage(steps=0))
    with pytest.raises(BadInputError, match="opening"):
        new_state(recipe)
    without_opening_dit = dataclasses.replace(get_recipe("tiny"), opening_tune=DiTStage(steps=2))
    with pytest.raises(BadInputError, match="opening_tune steps"):
        new_state(without_opening_dit)
    with pytest.raises(ValueError, match="first_frames"):
        dataclasses.replace(MODEL_CONFIGS["tiny-opening"], first_frames=0)


def test_only_a_new_clips_first_frames_come_from_the_opening_dit() -> None:
    torch.manual_seed(0)
    model = build_model("tiny-opening", CAPTION_VOCABULARY)
    pipeline = Pipeline(model, "tiny-opening@test", torch.device("cpu"))
    preset = ResolvedPreset("test", 2.0, 8, 32, 32, "tiny", steps=2, guidance=2.0)
    request = GenerationRequest("a small red circle moving right", 0, preset)
    context = torch.randn(1, 4, 2, 8, 8)

    def made() -> tuple[np.ndarray, np.ndarray]:
        new_clip = np.stack(list(pipeline.frames(request)))
        continued = np.stack(list(pipeline.frames(request, context=context)))
        return new_clip, continued

    new_clip, continued = made()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith("opening_"):  # the opening DiT and text encoder
                parameter.add_(0.5 * torch.randn_like(parameter))
    changed_clip, changed_continuation = made()
    assert not np.array_equal(new_clip[0], changed_clip[0])
    assert np.array_equal(continued, changed_continuation)


def test_a_model_file_with_an_opening_dit_loads_with_it(opening_run: Path, tmp_path: Path) -> None:
    exported = export_model(opening_run, tmp_path / "model.safetensors")
    loaded = load_model(tmp_path / "model.safetensors")
    assert loaded.opening_dit is not None and loaded.opening_text_encoder is not None
    for name, tensor in exported.state_dict().items():
        assert torch.equal(tensor.to(EXPORT_DTYPE).float(), loaded.state_dict()[name]), name
