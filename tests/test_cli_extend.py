"""`soravid extend` end to end with the tiny model: names, --json, warnings and bad inputs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest
from typer.testing import CliRunner

from soravid.cli import app
from soravid.video import probe_video
from tests.test_extend import lavfi_clip, shapes_clip
from tests.test_video import turned_copy

runner = CliRunner()


def extend(model: Path, *args: str):
    common = ["--model", str(model), "--device", "cpu", "--steps", "2"]
    return runner.invoke(app, ["extend", *args, *common])


@pytest.fixture
def soravid_clip(tiny_model_path: Path, tmp_path: Path) -> Path:
    """A clip soravid made, with its recipe (prompt, preset) in the metadata."""
    clip = tmp_path / "ball.mp4"
    args = ["generate", "a red circle moving left", "--model", str(tiny_model_path)]
    args += ["--preset", "square", "--seconds", "1", "--steps", "2", "-o", str(clip)]
    assert runner.invoke(app, args).exit_code == 0
    return clip


def test_extends_a_soravid_clip_under_the_default_name(
    tiny_model_path: Path, soravid_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = extend(tiny_model_path, str(soravid_clip), "--seconds", "1.5")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "ball-extended.mp4"
    assert "warning" not in result.stderr  # the clip fits the model as it is
    info = probe_video(tmp_path / "ball-extended.mp4")
    assert (info.frames, info.width, info.height, info.fps) == (8 + 12, 64, 64, 8)
    assert info.metadata["prompt"] == "a red circle moving left"  # from the clip's recipe
    assert info.metadata["extended"]["source_recipe"]["prompt"] == "a red circle moving left"
    again = extend(tiny_model_path, str(soravid_clip))
    assert again.exit_code == 2 and "exists" in again.stderr
    assert extend(tiny_model_path, str(soravid_clip), "--overwrite").exit_code == 0


def test_json_only_new_and_what_was_adapted(tiny_model_path: Path, tmp_path: Path) -> None:
    clip = lavfi_clip(tmp_path / "test.mp4", "testsrc2", "150x100", 25)
    out = tmp_path / "new.mp4"
    args = [str(clip), "--prompt", "a red circle", "--only-new", "--json", "-o", str(out)]
    result = extend(tiny_model_path, *args, "--seconds", "0.8", "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["frames"], record["original_frames"], record["new_frames"]) == (20, 0, 20)
    assert (record["width"], record["height"], record["fps"]) == (150, 100, 25)
    assert probe_video(out).frames == 20
    assert "stretched from 150x100 to the model's 96x64" in result.stderr
    assert "25 fps are resampled to the model's 8 fps" in result.stderr


def test_a_foreign_clip_needs_a_prompt(tiny_model_path: Path, tmp_path: Path) -> None:
    clip = shapes_clip(tmp_path / "foreign.mp4", 64, 64, 8, 1.0)
    result = extend(tiny_model_path, str(clip), "-o", str(tmp_path / "out.mp4"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "pass --prompt" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["foreign.mp4"]


def bad_clip(folder: Path, kind: str) -> Path:
    path = folder / f"{kind}.mp4"
    if kind == "random":
        path.write_bytes(bytes(range(256)) * 40)
    elif kind == "truncated":
        whole = shapes_clip(folder / "whole.mp4", 64, 64, 8, 2.0).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
        (folder / "whole.mp4").unlink()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("no-frames", "audio-only", "audio-with-cover"):
        source = ["-f", "lavfi", "-i", "anullsrc", "-t", "1", "-c:a", "aac"]
        if kind == "no-frames":
            source = ["-f", "lavfi", "-i", "color=size=64x64", "-frames:v", "0", "-c:v", "libx264"]
        if kind == "audio-with-cover":  # a song's album art: a picture stream, not a video
            source = ["-f", "lavfi", "-i", "anullsrc", "-f", "lavfi", "-i", "color=size=64x64"]
            source += ["-map", "0:a", "-map", "1:v", "-t", "1", "-c:a", "aac", "-c:v", "png"]
            source += ["-frames:v", "1", "-disposition:v:0", "attached_pic"]
        ffmpeg = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error"]
        subprocess.run([*ffmpeg, *source, str(path)], check=True)
    return path


@pytest.mark.parametrize(
    "kind",
    ["missing", "random", "truncated", "empty", "no-frames", "audio-only", "audio-with-cover"],
)
def test_bad_input_is_exit_2_one_line_nothing_written(
    tiny_model_path: Path, tmp_path: Path, kind: str
) -> None:
    clip = bad_clip(tmp_path, kind)
    before = sorted(tmp_path.iterdir())
    result = extend(
        tiny_model_path, str(clip), "--prompt", "a red circle", "-o", str(tmp_path / "out.mp4")
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert str(clip) in result.stderr
    if kind.startswith("audio"):
        assert "has no video stream" in result.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_a_phone_clip_shown_portrait_is_continued_portrait(
    tiny_model_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored 150x100 with a display matrix turning it a quarter, as phones store portrait
    video: the whole extension is 100x150, the way the clip is shown."""
    stored = lavfi_clip(tmp_path / "stored.mp4", "testsrc2", "150x100", 25)
    phone = turned_copy(stored, tmp_path / "phone.mp4")
    out = tmp_path / "phone-extended.mp4"
    args = [str(phone), "--prompt", "a red circle", "--seconds", "0.8", "-o", str(out), "--json"]
    result = extend(tiny_model_path, *args)
    assert result.exit_code == 0, result.output
    assert not caplog.records  # imageio-ffmpeg's note on the turned frames is not shown
    info = probe_video(out)
    assert (info.width, info.height, info.frames) == (100, 150, 25 + 20)
