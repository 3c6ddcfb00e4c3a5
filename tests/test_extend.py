"""soravid.extend with the tiny model: shapes-world and ffmpeg lavfi clips of any size and rate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from soravid.errors import BadInputError
from soravid.extend import CONTINUE_FROM, _nearest, _retime, extend, plan_extension
from soravid.pipeline import GenerationRequest, Pipeline
from soravid.video import probe_video, read_frames
from soravid.world import WorldAttributes
from soravid.world.measure import measure_frame
from soravid.world.render import save_clip

BALL = WorldAttributes("black", "red", "circle", "large", "moving right")


def shapes_clip(path: Path, width: int, height: int, fps: float, seconds: float) -> Path:
    return save_clip(path, BALL, width, height, fps, seconds, seed=1)


def lavfi_clip(path: Path, source: str, size: str, rate: int, seconds: float = 1.0) -> Path:
    """A clip from one of ffmpeg's generated sources (testsrc2, mandelbrot, ...)."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi"]
    command += ["-i", f"{source}=size={size}:rate={rate}", "-t", str(seconds)]
    subprocess.run([*command, "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path)], check=True)
    return path


def decoded(path: Path) -> np.ndarray:
    return np.stack(list(read_frames(path))).astype(np.int16)


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture
def pipeline(tiny_model_path: Path) -> Pipeline:
    return Pipeline.load(str(tiny_model_path), device="cpu")


def run(pipeline: Pipeline, source: Path, out: Path, seconds: float = 1.0, **options):
    sampler = {"steps": 2}
    extension = plan_extension(source, seconds, prompt="a red circle", sampler=sampler, **options)
    return extension, extend(pipeline, extension, out)


def test_a_clip_at_the_model_canvas_is_continued_as_it_is(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    source = shapes_clip(tmp_path / "ball.mp4", 64, 64, 8, 2.0)
    extension, result = run(pipeline, source, tmp_path / "out.mp4")
    assert extension.adaptations() == []
    assert (result.original_frames, result.new_frames, result.frames) == (16, 8, 24)
    info = probe_video(result.path)
    assert (info.frames, info.width, info.height, info.fps) == (24, 64, 64, 8)
    frames = decoded(result.path)
    assert mean_difference(frames[:16], decoded(source)) < 1.0  # re-encoded, near lossless
    extended = info.metadata["extended"]
    assert extended["source"] == str(source) and extended["new_frames"] == 8
    assert info.metadata["prompt"] == "a red circle"


def test_other_sizes_and_rates_come_back_to_the_original(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    source = shapes_clip(tmp_path / "ball.mp4", 80, 60, 12, 1.5)
    extension, result = run(pipeline, source, tmp_path / "out.mp4", seconds=2.0)
    assert (extension.preset.width, extension.preset.height, extension.preset.fps) == (96, 64, 8)
    assert extension.model_frames == 16  # 24 new frames at 12 fps are 16 at the model's 8
    notes = " ".join(extension.adaptations())
    assert "80x60 to the model's 96x64" in notes and "12 fps are resampled" in notes
    info = probe_video(result.path)
    assert (info.frames, info.width, info.height, info.fps) == (18 + 24, 80, 60, 12)
    assert mean_difference(decoded(result.path)[:18], decoded(source)) < 1.0


@pytest.mark.parametrize(
    ("source", "size", "rate", "canvas"),
    [("testsrc2", "150x100", 25, (96, 64)), ("mandelbrot", "90x160", 15, (64, 112))],
)
def test_footage_from_outside_the_shapes_world(
    pipeline: Pipeline, tmp_path: Path, source: str, size: str, rate: int, canvas: tuple
) -> None:
    clip = lavfi_clip(tmp_path / "footage.mp4", source, size, rate)
    extension, result = run(pipeline, clip, tmp_path / "out.mp4", seconds=1.0)
    assert (extension.preset.width, extension.preset.height) == canvas
    info = probe_video(result.path)
    width, height = map(int, size.split("x"))
    assert (info.frames, info.width, info.height, info.fps) == (2 * rate, width, height, rate)
    # Decoded RGB re-encoded as yuv420p: the chroma round trip costs this much on sharp
    # colour edges (a plain re-encode of testsrc2 differs by 2.2 on average).
    assert mean_difference(decoded(result.path)[:rate], decoded(clip)) < 3.0


def test_only_new_writes_the_continuation_alone(pipeline: Pipeline, tmp_path: Path) -> None:
    source = shapes_clip(tmp_path / "ball.mp4", 64, 64, 8, 1.0)
    _, result = run(pipeline, source, tmp_path / "out.mp4", seconds=1.5, only_new=True)
    assert (result.frames, result.original_frames) == (12, 0)
    assert probe_video(result.path).frames == 12


class StillModel:
    """Stands in for a model that continues perfectly a clip where nothing moves: every new
    frame is the last context frame. The join then shows only what extend itself does."""

    model_id = "still@test"

    def __init__(self) -> None:
        self.context: list[np.ndarray] = []

    def check_canvas(self, preset: object) -> None:
        pass

    def context_span(self) -> int:
        return 9

    def encode_context(self, frames: list[np.ndarray]) -> torch.Tensor:
        self.context = frames
        return torch.zeros(1)

    def frames(self, request: GenerationRequest, on_progress=None, context=None):
        return (self.context[-1].copy() for _ in range(request.preset.frames))

    def recipe(self, request: GenerationRequest) -> dict:
        return {"prompt": request.prompt}


def test_the_join_keeps_position_and_colour(tmp_path: Path) -> None:
    source = shapes_clip(tmp_path / "ball.mp4", 150, 100, 25, 2.0)
    still = StillModel()
    extension = plan_extension(source, 1.0, prompt="a red circle")
    extend(still, extension, tmp_path / "out.mp4")  # type: ignore[arg-type]
    assert len(still.context) == 9 and still.context[0].shape == (64, 96, 3)
    frames = decoded(tmp_path / "out.mp4")
    last, first_new = (measure_frame(frame.astype(np.uint8)) for frame in frames[49:51])
    assert np.hypot(*np.subtract(last.centre, first_new.centre)) < 1.0
    assert np.abs(last.colour_rgb - first_new.colour_rgb).max() < 6
    assert mean_difference(frames[49], frames[50]) < 1.0  # stretched down and back: blur only


def test_time_is_resampled_by_picking_the_nearest_frame() -> None:
    def picked(count: int, from_fps: float, to_fps: float) -> list[int]:
        return list(_retime(iter(range(1, 100)), count, from_fps, to_fps))

    assert picked(6, 8, 8) == [1, 2, 3, 4, 5, 6]
    assert picked(8, 8, 25) == [1, 1, 1, 1, 2, 2, 2, 3]  # 8 -> 25 fps: each frame ~3 times
    assert picked(3, 24, 8) == [3, 6, 9]  # 24 -> 8 fps: every third frame
    assert _nearest(25, 25, 8) == 8 and _nearest(1, 25, 8) == 0


def test_the_prompt_comes_from_the_recipe_or_must_be_given(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    made = Pipeline.load(str(tiny_model_path), device="cpu")
    clip = tmp_path / "made.mp4"
    preset = plan_extension(shapes_clip(tmp_path / "b.mp4", 64, 64, 8, 1), 1, prompt="x").preset
    made.generate(GenerationRequest("a blue square moving up", 3, preset), clip)
    assert plan_extension(clip, 1.0).prompt == "a blue square moving up"
    foreign = shapes_clip(tmp_path / "foreign.mp4", 64, 64, 8, 1.0)
    with pytest.raises(BadInputError, match="pass --prompt"):
        plan_extension(foreign, 1.0)
    with pytest.raises(BadInputError, match="prompt is empty"):
        plan_extension(foreign, 1.0, prompt="  ")


def test_a_clip_with_odd_sides_comes_back_padded_to_even(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """H.264 (yuv420p) holds only even sides: a 63x47 clip is written at 64x48, its last
    column and row repeated, the original's pixels where they were."""
    # Raw frames into FFV1, which keeps any size: a red left half, blue right, a green last row.
    frame = np.zeros((47, 63, 3), np.uint8)
    frame[:, :32, 0], frame[:, 32:, 2], frame[-1, :, 1] = 255, 255, 255
    odd, raw = tmp_path / "odd.mkv", tmp_path / "odd.rgb"
    raw.write_bytes(np.stack([frame] * 8).tobytes())
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt"]
    command += ["rgb24", "-s", "63x47", "-r", "8", "-i", str(raw), "-c:v", "ffv1", str(odd)]
    subprocess.run(command, check=True)
    extension, result = run(pipeline, odd, tmp_path / "out.mp4")
    assert "63x47 has an odd side" in " ".join(extension.adaptations())
    assert "64x48, its last column and row repeated" in " ".join(extension.adaptations())
    info = probe_video(result.path)
    assert (info.width, info.height, info.frames) == (64, 48, 16)
    assert (result.width, result.height) == (64, 48)
    frames = decoded(result.path)
    padded = np.pad(frame, ((0, 1), (0, 1), (0, 0)), mode="edge")
    assert mean_difference(frames[:8], np.stack([padded] * 8)) < 2.0
    # Not stretched: the colours' border stays between columns 31 and 32, the green row is two.
    assert (frames[:8, :45, 31, 0] > 200).all() and (frames[:8, :45, 31, 2] < 55).all()
    assert (frames[:8, :45, 32, 2] > 200).all() and (frames[:8, :45, 32, 0] < 55).all()
    assert (frames[:8, 46:, :, 1] > 200).all() and (frames[:8, 44, :, 1] < 55).all()
    # The continuation is padded the same way: its last column and row repeat the ones before.
    assert np.abs(frames[8:, :, -1] - frames[8:, :, -2]).mean() < 4.0
    assert np.abs(frames[8:, -1] - frames[8:, -2]).mean() < 4.0


def test_bad_seconds_are_refused(tmp_path: Path) -> None:
    clip = shapes_clip(tmp_path / "ball.mp4", 64, 64, 8, 1.0)
    with pytest.raises(BadInputError, match="--seconds"):
        plan_extension(clip, 601, prompt="a red circle")


def test_a_continuation_starts_from_the_clips_last_motion_unless_told(tmp_path: Path) -> None:
    """Extension carries the clip's motion on (CONTINUE_FROM); continue_from 1 starts from
    noise; a value out of range names the flag."""
    clip = shapes_clip(tmp_path / "ball.mp4", 64, 64, 8, 1.0)
    assert plan_extension(clip, 1.0, prompt="a ball").preset.continue_from == CONTINUE_FROM < 1
    told = plan_extension(clip, 1.0, prompt="a ball", sampler={"continue_from": 1.0})
    assert told.preset.continue_from == 1.0
    with pytest.raises(BadInputError, match="--continue-from must be above 0"):
        plan_extension(clip, 1.0, prompt="a ball", sampler={"continue_from": 0.0})
