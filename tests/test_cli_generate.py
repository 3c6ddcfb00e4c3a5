"""`soravid generate` end to end with a tiny random model: a playable MP4 of the right size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soravid import weights as weights_module
from soravid.cli import app
from soravid.video import probe_video, read_frames

runner = CliRunner()


def generate(*args: str):
    return runner.invoke(app, ["generate", *args, "--device", "cpu", "--steps", "2"])


def test_generate_writes_a_playable_mp4(tiny_model_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "clip.mp4"
    result = generate(
        "a red circle moving left",
        "--model",
        str(tiny_model_path),
        "--seconds",
        "1.5",
        "--width",
        "64",
        "--height",
        "32",
        "-o",
        str(output),
    )
    assert result.exit_code == 0, result.output
    info = probe_video(output)
    assert (info.frames, info.width, info.height, info.fps) == (12, 64, 32, 8)
    assert info.metadata["prompt"] == "a red circle moving left"
    assert info.metadata["model"].startswith("tiny@")
    assert len(list(read_frames(output))) == 12


def test_generate_json_and_default_name(tiny_model_path: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = generate(
        "A red ball!",
        "--seed",
        "4",
        "--model",
        str(tiny_model_path),
        "--seconds",
        "1",
        "--preset",
        "portrait",
        "--json",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    path = Path(record["path"])
    assert path.parent == Path(".") and path.name.endswith("-s4.mp4")
    info = probe_video(tmp_path / path)
    assert (record["frames"], record["width"], record["height"]) == (8, 64, 112)
    assert (info.frames, info.width, info.height) == (8, 64, 112)
    assert "'ball'" in result.stderr  # unknown word named in a warning, clip still made


def test_same_seed_gives_the_same_clip(tiny_model_path: Path, tmp_path: Path) -> None:
    clips = []
    for name in ("a.mp4", "b.mp4"):
        args = ["a blue square", "--model", str(tiny_model_path), "--seconds", "0.5"]
        assert generate(*args, "-o", str(tmp_path / name)).exit_code == 0
        clips.append(list(read_frames(tmp_path / name)))
    assert all((a == b).all() for a, b in zip(*clips, strict=True))


def test_missing_model_file_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "clip.mp4"
    result = generate(
        "a red circle", "--model", str(tmp_path / "nope.safetensors"), "-o", str(output)
    )
    assert result.exit_code == 2
    assert "model file not found" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_embedded_model_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_module, "embedded_model_path", lambda: tmp_path / "none")
    result = generate("a red circle", "-o", str(tmp_path / "clip.mp4"))
    assert result.exit_code == 2
    assert "no embedded model is bundled in this build; pass --model PATH" in result.stderr
    assert not (tmp_path / "clip.mp4").exists()
