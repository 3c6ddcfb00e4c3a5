"""`soravid presets`, `soravid presets show` and `soravid info`, driven with CliRunner."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from soravid.cli import app
from soravid.video import VideoWriter

runner = CliRunner()
NAMES = ["default", "minute", "portrait", "square", "widescreen"]
RECIPE = {
    "prompt": "a big red ball",
    "seed": 4,
    "preset": {"name": "square", "seconds": 1.0, "fps": 8, "width": 32, "height": 32},
    "model": "tiny@0123abcd",
    "soravid": "0.1.0",
}


def invoke(*args: str):
    return runner.invoke(app, list(args))


def write_clip(path: Path, metadata: dict | None = None) -> Path:
    with VideoWriter(path, 32, 32, 8, metadata=metadata) as writer:
        for index in range(8):
            writer.write(np.full((32, 32, 3), 30 * index, np.uint8))
    return path


def test_presets_lists_every_preset_with_its_values():
    result = invoke("presets")
    assert result.exit_code == 0
    for name, size in zip(NAMES, ["96x64", "96x64", "64x112", "64x64", "112x64"], strict=True):
        row = next(line for line in result.stdout.splitlines() if line.split()[:1] == [name])
        assert size in row


def test_presets_json_is_one_object_per_preset():
    result = invoke("presets", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["name"] for record in records] == NAMES
    portrait = records[NAMES.index("portrait")]
    assert (portrait["width"], portrait["height"], portrait["frames"]) == (64, 112, 40)
    assert records[NAMES.index("minute")]["seconds"] == 60.0


def test_presets_show_prints_a_preset_file_that_loads_back(tmp_path):
    result = invoke("presets", "show", "widescreen")
    assert result.exit_code == 0
    values = yaml.safe_load(result.stdout)
    assert (values["width"], values["height"], values["sampler"]["steps"]) == (112, 64, 8)
    copy = tmp_path / "mine.yaml"
    copy.write_text(result.stdout)
    assert invoke("presets", "show", str(copy)).stdout == result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, "unknown preset 'cinema'"), ("fps: 8\ncolour: red\n", "unknown key 'colour'")],
)
def test_presets_show_rejects_bad_presets_in_one_line(tmp_path, text, expected):
    name = "cinema"
    if text is not None:
        name = str(tmp_path / "bad.yaml")
        Path(name).write_text(text)
    result = invoke("presets", "show", name)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr


def test_info_reads_back_the_recipe(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", RECIPE)
    shown = invoke("info", str(clip))
    assert shown.exit_code == 0
    assert "1.00 s (8 frames at 8 fps)" in shown.stdout
    assert "a big red ball" in shown.stdout and "tiny@0123abcd" in shown.stdout
    record = json.loads(invoke("info", "--json", str(clip)).stdout)
    assert record["recipe"] == RECIPE
    assert (record["width"], record["height"], record["frames"], record["fps"]) == (32, 32, 8, 8)


def test_info_on_a_foreign_clip_says_so(tmp_path):
    plain = write_clip(tmp_path / "plain.mp4")
    assert "no soravid recipe" in invoke("info", str(plain)).stdout
    assert json.loads(invoke("info", "--json", str(plain)).stdout)["recipe"] is None


def test_info_json_prints_one_object_per_file(tmp_path):
    clips = [str(write_clip(tmp_path / f"{name}.mp4", RECIPE)) for name in ("a", "b")]
    lines = invoke("info", "--json", *clips).stdout.splitlines()
    assert [json.loads(line)["path"] for line in lines] == clips


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file"), (b"not a video at all", "not a video ffmpeg can read")],
)
def test_info_on_unreadable_files_exits_2(tmp_path, content, expected):
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    result = invoke("info", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: {expected}\n"


def test_info_on_a_model_file_points_to_model_option(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"whatever")
    result = invoke("info", str(path))
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: a model file, not a video; describe it with --model\n"


@pytest.mark.parametrize("command", [["generate"], ["presets"], ["presets", "show"], ["info"], []])
def test_every_command_has_an_example_in_its_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
