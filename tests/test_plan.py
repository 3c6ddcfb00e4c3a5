"""Planning a clip before making it: Pipeline.plan, Pipeline.from_header, generate --dry-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from soravid.cli import app
from soravid.config import ResolvedPreset
from soravid.errors import BadInputError
from soravid.pipeline import GenerationRequest, Pipeline
from tests.conftest import make_tiny_model

runner = CliRunner()


def request(seconds: float, guidance: float = 3.0, width: int = 32) -> GenerationRequest:
    preset = ResolvedPreset("test", seconds, 8, width, 32, "tiny", steps=2, guidance=guidance)
    return GenerationRequest("a red circle moving left", 0, preset)


@pytest.fixture
def pipeline(tiny_model_path: Path) -> Pipeline:
    return Pipeline.load(str(tiny_model_path), device="cpu")


def test_plan_counts_what_generation_does() -> None:
    """A model with classifier-free guidance: two passes a guided step (a distilled one's one
    pass is counted in test_pipeline)."""
    model = make_tiny_model(guidance_embedding=False)
    pipeline = Pipeline(model, "tiny@test", torch.device("cpu"))
    decodes = []
    clip = request(seconds=2.5)
    frames = list(pipeline.frames(clip, on_progress=lambda e: decodes.append(e.phase)))
    plan = pipeline.plan(clip)
    assert plan.frames == len(frames) == 20
    assert plan.chunks == decodes.count("decode") == 4  # 6 latent frames: 1, 2, 2, then 1
    assert plan.latent_frames == 6 and plan.latent_size == (8, 8)
    assert (plan.window_frames, plan.context_frames) == (3, 1)
    assert plan.model_passes == plan.chunks * 2 * 2  # two steps, each guided (two passes)
    assert pipeline.plan(request(2.5, guidance=1.0)).model_passes == plan.chunks * 2


def test_plan_time_grows_with_chunks_and_memory_is_measured(pipeline: Pipeline) -> None:
    short, long = pipeline.plan(request(seconds=5)), pipeline.plan(request(seconds=60))
    assert long.chunks == 61 and short.chunks == 6  # the first latent frame alone, then 2 a chunk
    assert long.estimated_seconds > short.estimated_seconds > 0
    assert long.estimated_peak_mb > 10


def test_plan_refuses_a_canvas_the_model_cannot_take(pipeline: Pipeline) -> None:
    with pytest.raises(BadInputError, match="width 36"):
        pipeline.plan(request(seconds=1, width=36))


def test_from_header_builds_the_described_networks_without_weights(
    pipeline: Pipeline, tiny_model_path: Path
) -> None:
    planner = Pipeline.from_header(str(tiny_model_path), device="cpu")
    assert planner.model_id == pipeline.model_id
    assert planner.model.config == pipeline.model.config
    loaded, random = pipeline.model.state_dict(), planner.model.state_dict()
    assert loaded.keys() == random.keys()
    assert not torch.equal(loaded["dit.final.proj.weight"], random["dit.final.proj.weight"])


def dry_run(model: Path, *args: str):
    common = ["--model", str(model), "--device", "cpu", "--steps", "2", "--dry-run"]
    return runner.invoke(app, ["generate", "a red circle", *common, *args])


def test_dry_run_prints_the_plan_and_writes_nothing(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dry run must not load the model's weights")

    monkeypatch.setattr(Pipeline, "load", no_loading)
    monkeypatch.chdir(tmp_path)
    result = dry_run(tiny_model_path, "--seconds", "60", "--width", "32", "--height", "32")
    assert result.exit_code == 0, result.output
    assert "chunks          61 of 3 latent frames, the first 1 made alone" in result.stdout
    assert "estimated time" in result.stdout and "estimated peak" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_dry_run_json_is_one_object(tiny_model_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "clip.mp4"
    result = dry_run(tiny_model_path, "--seconds", "600", "--json", "-o", str(output))
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert (plan["frames"], plan["latent_frames"], plan["chunks"]) == (4800, 1201, 601)
    assert plan["first_chunk_frames"] == 1
    assert plan["path"] == str(output) and plan["model"].startswith("tiny@")
    assert plan["estimated_seconds"] > 0 and "RSS" in plan["estimate"]
    assert not output.exists()


def test_dry_run_still_refuses_bad_input(tiny_model_path: Path, tmp_path: Path) -> None:
    existing = tmp_path / "clip.mp4"
    existing.write_bytes(b"taken")
    result = dry_run(tiny_model_path, "-o", str(existing))
    assert result.exit_code == 2 and "exists" in result.stderr
    result = dry_run(tmp_path / "missing.safetensors", "-o", str(tmp_path / "new.mp4"))
    assert result.exit_code == 2 and "model file not found" in result.stderr


def test_continue_from_flag_skips_the_high_noise_steps_of_continuing_chunks(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    output = str(tmp_path / "clip.mp4")
    args = ["--seconds", "10", "--json", "-o", output]
    plans = [
        json.loads(dry_run(tiny_model_path, *args, *flag).stdout)
        for flag in (["--continue-from", "1"], ["--continue-from", "0.4"])
    ]
    from_noise, warm = plans
    assert warm["chunks"] == from_noise["chunks"]
    assert warm["model_passes"] < from_noise["model_passes"]
