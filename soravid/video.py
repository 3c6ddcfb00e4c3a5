"""MP4 in and out through the ffmpeg binary that imageio-ffmpeg ships.

At this boundary a frame is a numpy uint8 array (H, W, 3), RGB. Writing streams each frame to
ffmpeg as it comes (H.264, yuv420p, moov atom up front, so browsers and phones play it), into a
temporary file beside the destination that is renamed into place only once it is complete and
verified. The generation recipe travels inside the MP4 as a JSON `comment` tag.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import imageio_ffmpeg
import numpy as np

from soravid.errors import BadInputError, GenerationError, VideoReadError

# libx264 constant rate factor through imageio-ffmpeg's 0-10 scale: 7 -> crf 15, near lossless
# for flat synthetic colours, which the judge reads back.
QUALITY = 7
# The video stream read from a file: its first, leaving out cover pictures (an audio file's
# album art is not a video).
FIRST_VIDEO = "0:V:0"
# What ffmpeg logs when an opened file stops before its last packet.
_TRUNCATION = re.compile(r"partial file|corrupt input packet|truncat", re.I)


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    frames: int
    seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)  # the soravid recipe, {} if none


# ---------------------------------------------------------------------------- writing


class _AbortWrite(BaseException):
    """Thrown into imageio-ffmpeg's writer: a BaseException makes it kill ffmpeg, not wait."""


# Writers whose ffmpeg was started and that have neither finished nor aborted. A Ctrl-C can land
# between two statements where no handler of the writer runs (entering `__exit__`, say); then
# ffmpeg would outlive us and finish a file already deleted. `abort_unfinished_writes`, called
# where the interrupt is finally caught, stops them first.
_unfinished: set[VideoWriter] = set()


class VideoWriter:
    """Context manager streaming uint8 (H, W, 3) frames into an MP4 at `path`.

    On a clean exit the file is verified (it decodes, with every frame written) and renamed
    into place; on an exception or Ctrl-C ffmpeg is stopped and nothing is left behind.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs even sizes, got {width}x{height}")
        self.path = Path(path)
        self.width, self.height, self.fps = width, height, fps
        self.metadata = metadata or {}
        self.overwrite = overwrite
        self.frames_written = 0
        # ffmpeg picks the container from the extension, so the temp name must end in .mp4.
        self.temp_path = self.path.with_name(f"{self.path.stem}.{os.getpid()}.tmp.mp4")
        self._encoder: Any = None

    def __enter__(self) -> VideoWriter:
        check_output_path(self.path, self.overwrite)
        tags = ["-metadata", f"comment={json.dumps(self.metadata)}"] if self.metadata else []
        self._encoder = imageio_ffmpeg.write_frames(
            str(self.temp_path),
            (self.width, self.height),
            fps=self.fps,
            quality=QUALITY,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=2,
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart", *tags],
        )
        _unfinished.add(self)
        try:
            with _holding_ctrl_c():
                self._encoder.send(None)  # starts ffmpeg
        except BaseException:
            self._abort()
            raise
        return self

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a uint8 frame of shape {(self.height, self.width, 3)}, "
                f"got {frame.dtype} {frame.shape}"
            )
        try:
            self._encoder.send(np.ascontiguousarray(frame))
        except OSError:
            raise GenerationError(f"ffmpeg stopped while writing {self.path}") from None
        self.frames_written += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._finish()
        else:
            self._abort()

    def _finish(self) -> None:
        if self.frames_written == 0:
            self._abort()
            raise GenerationError(f"no frames were written to {self.path}")
        try:
            with _holding_ctrl_c():
                self._encoder.close()  # ffmpeg writes the trailer and exits
            self._verify()
        except BaseException:
            self._abort()  # ffmpeg may still run if the interrupt came before it was told to stop
            raise
        os.replace(self.temp_path, self.path)
        _unfinished.discard(self)

    def _verify(self) -> None:
        try:
            info = probe_video(self.temp_path)
        except VideoReadError as error:
            message = f"ffmpeg wrote an unreadable file for {self.path}: {error}"
            raise GenerationError(message) from error
        written = (self.frames_written, self.width, self.height)
        if (info.frames, info.width, info.height) != written:
            raise GenerationError(
                f"ffmpeg wrote {info.frames} frames of {info.width}x{info.height} for "
                f"{self.path}, expected {written[0]} of {self.width}x{self.height}"
            )

    def _abort(self) -> None:
        # ffmpeg is killed, not waited for (imageio-ffmpeg keeps the process to itself): only
        # if it were creating its output at that very instant could the file outlive unlink.
        try:
            with _holding_ctrl_c():
                self._encoder.throw(_AbortWrite())
        except (_AbortWrite, OSError):
            pass
        finally:
            self.temp_path.unlink(missing_ok=True)
            _unfinished.discard(self)


def abort_unfinished_writes() -> None:
    """Stop the ffmpeg of every writer an interrupt left open and delete its partial file."""
    for writer in list(_unfinished):
        writer._abort()


@contextmanager
def _holding_ctrl_c() -> Iterator[None]:
    """Hold a Ctrl-C that lands while ffmpeg is started or stopped, and raise it after. Raised
    inside imageio-ffmpeg's stop, it can skip the kill: ffmpeg, its input closed, goes on to
    finish a file already deleted and says so on stderr after our last line. Only the main
    thread receives signals, so elsewhere there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)  # now through the handler it was meant for


def check_output_path(path: Path, overwrite: bool) -> None:
    """Refuse outputs that could not be written, or would replace a file unasked."""
    if path.suffix.lower() != ".mp4":
        raise BadInputError(f"output must be an .mp4 file, got {path}")
    if not path.parent.is_dir():
        raise BadInputError(f"output folder does not exist: {path.parent}")
    if path.is_dir():
        raise BadInputError(f"output path is a folder: {path}")
    if path.exists() and not overwrite:
        raise BadInputError(f"output file exists: {path} (pass --overwrite to replace it)")


# ---------------------------------------------------------------------------- reading


def probe_video(path: str | Path) -> VideoInfo:
    """Size, rate, frame count and soravid recipe of a video, from one pass over its packets."""
    path = Path(path)
    log, frames = _scan_packets(path)
    # The first video stream that is not a cover picture, as the scan mapped it (0:V:0).
    streams = re.finditer(r"Stream #0:\d+.*?: Video: (.*)", log)
    stream = next((s for s in streams if "(attached pic)" not in s[1]), None)
    # The stream's own lines, up to the next stream or the output's: its side data.
    block = log[stream.start() :] if stream else ""
    block = re.split(r"\n\s*(?:Stream #|Stream mapping:|Output #)", block, maxsplit=1)[0]
    size = re.search(r", (\d+)x(\d+)(?=[\s,\[]|$)", stream[1]) if stream else None
    rate = re.search(r"([\d.]+) (?:fps|tbr)\b", stream[1]) if stream else None
    if size is None or rate is None or frames == 0:
        raise VideoReadError(f"{path}: {_unreadable(path, log)}")
    fps = float(rate[1])
    width, height = int(size[1]), int(size[2])
    if _quarter_turned(block):  # a phone's portrait clip: stored landscape, shown turned
        width, height = height, width
    return VideoInfo(path, width, height, fps, frames, frames / fps, _recipe(path))


def _quarter_turned(stream_log: str) -> bool:
    """Whether the video stream's display matrix (its side data in the log) turns it a quarter
    (90 or 270 degrees): ffmpeg decodes such a video turned, so its frames are the stored
    ones' height wide."""
    rotation = re.search(r"rotation of (-?[\d.]+) degrees", stream_log)
    return rotation is not None and round(float(rotation[1])) % 180 == 90


@contextmanager
def _quiet_turned_size_note() -> Iterator[None]:
    """imageio-ffmpeg warns on stderr, as it starts reading, whenever ffmpeg turns a video its
    display matrix rotates (the frames are not the stored size), which probe_video already
    accounts for. Only its warnings, and only then, are held back."""
    logger = logging.getLogger("imageio_ffmpeg")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def read_frames(source: str | Path | VideoInfo) -> Iterator[np.ndarray]:
    """The decoded RGB frames of any video ffmpeg reads, as uint8 (H, W, 3), streamed.

    The file is checked here, so a missing or broken one raises before iteration starts; one
    already probed (its VideoInfo) is not scanned again.
    """
    return _decode(source if isinstance(source, VideoInfo) else probe_video(source))


def _decode(info: VideoInfo) -> Iterator[np.ndarray]:
    # The stream probe_video measured: ffmpeg alone would pick the largest.
    reader = imageio_ffmpeg.read_frames(
        str(info.path), pix_fmt="rgb24", output_params=["-map", FIRST_VIDEO]
    )
    try:
        with _quiet_turned_size_note():
            width, height = next(reader)["size"]
        for raw in reader:
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    except (OSError, RuntimeError, StopIteration):
        raise VideoReadError(f"{info.path}: {_TRUNCATED} (decoding stopped early)") from None
    finally:
        reader.close()


_TRUNCATED = "video is truncated"


def _scan_packets(path: Path) -> tuple[str, int]:
    """ffmpeg's log for reading every video packet without decoding, and how many there are
    (one per frame); raises if unreadable."""
    if not path.is_file():
        raise VideoReadError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: file is empty")
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)]
    # One line per packet from the framecrc muxer: the final "frame=" count of the log is
    # missing from stream copies in some ffmpeg releases (7.0).
    command += ["-map", FIRST_VIDEO, "-c", "copy", "-f", "framecrc", "-"]
    done = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if done.returncode != 0:
        raise VideoReadError(f"{path}: {_unreadable(path, done.stderr)}")
    if _TRUNCATION.search(done.stderr):
        raise VideoReadError(f"{path}: {_TRUNCATED} (the file ends before the video does)")
    packets = sum(1 for line in done.stdout.splitlines() if line and not line.startswith("#"))
    return done.stderr, packets


def _unreadable(path: Path, log: str) -> str:
    """Why ffmpeg found no video in a file. An MP4 cut short keeps its `ftyp` header but loses
    its index (no duration then) or its frames, so that header tells truncated from not a video."""
    with path.open("rb") as file:
        is_mp4 = file.read(8)[4:] == b"ftyp"
    if is_mp4 and not re.search(r"Duration: \d", log):
        return f"{_TRUNCATED} (MP4 header without a complete index)"
    if "matches no streams" in log:
        return "has no video stream"
    return f"{_TRUNCATED} (MP4 without frames)" if is_mp4 else "not a video ffmpeg can read"


def _recipe(path: Path) -> dict[str, Any]:
    """The JSON object in the file's `comment` tag, or {} for clips soravid did not write.

    Read through ffmpeg's ffmetadata output: its log cuts tag values at 256 characters.
    """
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path)]
    command += ["-f", "ffmetadata", "pipe:1"]
    done = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace")
    tags = done.stdout
    match = re.search(r"^comment=(.*)$", tags, re.M)
    if match is None:
        return {}
    try:
        recipe = json.loads(re.sub(r"\\(.)", r"\1", match[1]))  # undo ffmetadata's escapes
    except json.JSONDecodeError:
        return {}
    return recipe if isinstance(recipe, dict) else {}
