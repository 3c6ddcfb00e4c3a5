"""MP4 writing and reading: round trip, recipe metadata, nothing left behind, clear errors."""

import inspect
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from soravid.errors import BadInputError, GenerationError, VideoReadError
from soravid.video import VideoWriter, abort_unfinished_writes, probe_video, read_frames

WIDTH, HEIGHT, FPS, FRAMES = 48, 32, 8, 12
RECIPE = {"prompt": 'a big red ball \u00e9 "quoted"', "seed": 7, "preset": {"width": WIDTH}}


def moving_block(index: int) -> np.ndarray:
    """A red 12x12 block two pixels further right each frame, on black."""
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[10:22, 2 * index : 2 * index + 12] = (230, 30, 30)
    return frame


def write_clip(path: Path, frames: int = FRAMES, **options) -> Path:
    with VideoWriter(path, WIDTH, HEIGHT, FPS, **options) as writer:
        for index in range(frames):
            writer.write(moving_block(index))
    return path


def wait_for_temp_file(folder: Path) -> None:
    """ffmpeg creates its output once the first frame is through; wait for it (up to 10 s)."""
    for _ in range(1000):
        if list(folder.glob("*.tmp.mp4")):
            return
        time.sleep(0.01)
    raise AssertionError(f"no temporary file appeared in {folder}")


def assert_nothing_left(folder: Path) -> None:
    assert sorted(os.listdir(folder)) == []


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", metadata=RECIPE)


def test_probe_reads_size_rate_frames_and_recipe(clip):
    info = probe_video(clip)
    assert (info.width, info.height, info.fps, info.frames) == (WIDTH, HEIGHT, FPS, FRAMES)
    assert info.seconds == pytest.approx(FRAMES / FPS)
    assert info.metadata == RECIPE


def turned_copy(clip: Path, path: Path) -> Path:
    """`clip` with a display matrix turning it a quarter, as phones store portrait video."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-display_rotation", "90"]
    subprocess.run([*command, "-i", str(clip), "-c", "copy", str(path)], check=True)
    return path


def test_a_video_shown_turned_a_quarter_is_read_as_shown(clip, tmp_path):
    """A phone's portrait clip is stored landscape with a display matrix turning it: its size
    and frames are the turned ones, as players show it."""
    turned = turned_copy(clip, tmp_path / "turned.mp4")
    info = probe_video(turned)
    assert (info.width, info.height) == (HEIGHT, WIDTH)
    frames = list(read_frames(turned))
    assert len(frames) == FRAMES and all(frame.shape == (WIDTH, HEIGHT, 3) for frame in frames)
    # Turned a quarter anticlockwise, the block's rows become columns from the bottom.
    assert np.abs(frames[0].astype(int) - np.rot90(moving_block(0)).astype(int)).mean() < 3


def two_video_streams(first: Path, second: Path, path: Path) -> Path:
    """One file holding the video of `first`, then that of `second`, as two streams."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(first), "-i", str(second)]
    subprocess.run([*command, "-map", "0:v", "-map", "1:v", "-c", "copy", str(path)], check=True)
    return path


def test_only_the_video_stream_read_is_turned_by_its_own_display_matrix(clip, tmp_path):
    """In a file of two video streams, the second turned, the first (the one read) is not:
    its size is the stored one, and so are its frames."""
    turned = turned_copy(clip, tmp_path / "turned.mp4")
    both = two_video_streams(clip, turned, tmp_path / "both.mp4")
    info = probe_video(both)
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert next(read_frames(both)).shape == (HEIGHT, WIDTH, 3)


def test_the_first_video_stream_is_read_even_when_a_later_one_is_larger(clip, tmp_path):
    """ffmpeg on its own decodes a file's largest video stream; probe_video measures the
    first, so the frames must come from the first too."""
    larger = tmp_path / "larger.mp4"
    with VideoWriter(larger, 2 * WIDTH, 2 * HEIGHT, FPS) as writer:
        for _ in range(FRAMES + 4):
            writer.write(np.full((2 * HEIGHT, 2 * WIDTH, 3), 200, np.uint8))
    both = two_video_streams(clip, larger, tmp_path / "both.mp4")
    info = probe_video(both)
    assert (info.width, info.height, info.frames) == (WIDTH, HEIGHT, FRAMES)
    frames = list(read_frames(both))
    assert len(frames) == FRAMES and frames[0].shape == (HEIGHT, WIDTH, 3)
    assert np.abs(frames[0].astype(int) - moving_block(0).astype(int)).mean() < 3


def test_reading_a_turned_video_holds_back_only_its_size_note(clip, tmp_path, caplog):
    """imageio-ffmpeg's note that the frames are not the stored size is held back while
    reading starts; its logger is left as the user set it."""
    logger = logging.getLogger("imageio_ffmpeg")
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with caplog.at_level(logging.WARNING, logger="imageio_ffmpeg"):
            list(read_frames(turned_copy(clip, tmp_path / "turned.mp4")))
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(before)
    assert not [record for record in caplog.records if record.name == "imageio_ffmpeg"]


def test_a_probed_video_is_read_without_scanning_it_again(clip, monkeypatch):
    """Judging, extending and contact sheets probe a clip, then read it: one packet scan."""
    info = probe_video(clip)
    scans = []
    monkeypatch.setattr("soravid.video._scan_packets", lambda path: scans.append(path))
    assert len(list(read_frames(info))) == FRAMES
    assert scans == []


def test_frames_come_back_close_to_what_was_written(clip):
    frames = list(read_frames(clip))
    assert len(frames) == FRAMES
    assert all(frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8 for frame in frames)
    for index, frame in enumerate(frames):
        error = np.abs(frame.astype(int) - moving_block(index).astype(int))
        assert error.mean() < 3  # H.264 at high quality: a few levels around the edges


def test_only_the_final_file_remains(clip):
    assert os.listdir(clip.parent) == ["clip.mp4"]


def test_a_long_recipe_comes_back_whole(tmp_path):
    recipe = {**RECIPE, "prompt": "a red ball; = # \\ " * 60}
    assert probe_video(write_clip(tmp_path / "long.mp4", metadata=recipe)).metadata == recipe


def test_a_clip_without_recipe_has_empty_metadata(tmp_path):
    assert probe_video(write_clip(tmp_path / "plain.mp4")).metadata == {}


def test_an_existing_file_is_kept_unless_overwrite(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", frames=3)
    with pytest.raises(BadInputError, match="output file exists"):
        write_clip(path)
    assert probe_video(path).frames == 3
    write_clip(path, frames=5, overwrite=True)
    assert probe_video(path).frames == 5
    assert os.listdir(tmp_path) == ["clip.mp4"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("clip.mkv", "output must be an .mp4 file"), ("no/such/clip.mp4", "folder does not exist")],
)
def test_outputs_that_cannot_be_written_are_refused(tmp_path, name, expected):
    with pytest.raises(BadInputError, match=expected):
        write_clip(tmp_path / name)
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize("error", [RuntimeError("model failed"), KeyboardInterrupt()])
def test_an_interrupted_write_leaves_nothing(tmp_path, error):
    with pytest.raises(type(error)):
        with VideoWriter(tmp_path / "clip.mp4", WIDTH, HEIGHT, FPS) as writer:
            for index in range(5):
                writer.write(moving_block(index))
            wait_for_temp_file(tmp_path)
            raise error
    assert_nothing_left(tmp_path)


class CtrlCWhileStopping:
    """The writer's encoder, with a Ctrl-C landing just as ffmpeg is told to stop."""

    def __init__(self, encoder):
        self.encoder = encoder

    def send(self, frame):
        return self.encoder.send(frame)

    def close(self):
        signal.raise_signal(signal.SIGINT)
        return self.encoder.close()

    def throw(self, error):
        signal.raise_signal(signal.SIGINT)
        return self.encoder.throw(error)


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt here, even in a test run that ignores SIGINT (as a
    shell without job control starts its background jobs)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("ending", ["finished", "failed"])
def test_ctrl_c_while_ffmpeg_stops_is_raised_once_ffmpeg_is_gone(tmp_path, ending, ctrl_c_raises):
    # Raised in the middle of imageio-ffmpeg's stop, it skipped the kill: ffmpeg finished a
    # file already deleted, and its error came after ours on stderr.
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(tmp_path / "clip.mp4", WIDTH, HEIGHT, FPS) as writer:
            for index in range(5):
                writer.write(moving_block(index))
            encoder = writer._encoder
            writer._encoder = CtrlCWhileStopping(encoder)
            if ending == "failed":
                raise RuntimeError("model failed")
    assert inspect.getgeneratorstate(encoder) == inspect.GEN_CLOSED  # ffmpeg waited or killed
    assert_nothing_left(tmp_path)


def test_ctrl_c_the_writer_never_saw_is_cleaned_up_where_it_is_caught(tmp_path, monkeypatch):
    finished = write_clip(tmp_path / "finished.mp4")

    def interrupted_on_entry(self, *exc_info):
        raise KeyboardInterrupt  # a Ctrl-C landing before __exit__'s first statement ran

    monkeypatch.setattr(VideoWriter, "__exit__", interrupted_on_entry)
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(tmp_path / "clip.mp4", WIDTH, HEIGHT, FPS) as writer:
            for index in range(5):
                writer.write(moving_block(index))
            wait_for_temp_file(tmp_path)
    assert inspect.getgeneratorstate(writer._encoder) == inspect.GEN_SUSPENDED  # ffmpeg runs on

    abort_unfinished_writes()  # what the CLI does before it says "interrupted"
    assert inspect.getgeneratorstate(writer._encoder) == inspect.GEN_CLOSED
    assert sorted(os.listdir(tmp_path)) == [finished.name]
    assert probe_video(finished).frames == FRAMES


def test_a_wrong_frame_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="expected a uint8 frame of shape"):
        with VideoWriter(tmp_path / "clip.mp4", WIDTH, HEIGHT, FPS) as writer:
            writer.write(moving_block(0))
            writer.write(np.zeros((HEIGHT, WIDTH, 3), np.float32))
    assert_nothing_left(tmp_path)


def test_a_clip_with_no_frames_is_an_error(tmp_path):
    with pytest.raises(GenerationError, match="no frames were written"):
        write_clip(tmp_path / "clip.mp4", frames=0)
    assert_nothing_left(tmp_path)


def read_error(path: Path) -> str:
    with pytest.raises(VideoReadError) as caught:
        read_frames(path)
    return str(caught.value)


def test_read_errors_say_what_is_wrong(tmp_path, clip):
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (tmp_path / "empty.mp4").write_bytes(b"")
    data = clip.read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "header.mp4").write_bytes(data[:200])
    assert read_error(tmp_path / "missing.mp4").endswith("missing.mp4: no such file")
    assert read_error(tmp_path).endswith(": not a file")
    assert read_error(tmp_path / "random.mp4").endswith("not a video ffmpeg can read")
    assert read_error(tmp_path / "empty.mp4").endswith("file is empty")
    assert "video is truncated" in read_error(tmp_path / "half.mp4")
    assert "video is truncated" in read_error(tmp_path / "header.mp4")
