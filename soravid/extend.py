"""Continue a clip (`soravid extend`): the original, then what the model makes after it.

Any video ffmpeg reads can be continued. Its last frames are brought to what the model works
at — picked to the model's frame rate, then stretched to a preset canvas near the clip's aspect —
and encoded as context; the model continues from there, and the new frames are brought back to
the clip's size and frame rate. The output holds the original's frames, decoded and re-encoded
(H.264 at soravid's near-lossless quality: equal within re-encoding tolerance, not bit for bit),
then the continuation; with `only_new`, the continuation alone.

Time is resampled by picking frames, never blending them (a blend shows two half-transparent
objects): counting from the clip's last frame at time 0, the frame at time k / fps is the one
nearest that time at the other rate. Space is stretched, both sides at once, to the canvas whose
aspect is nearest the clip's, so nothing is cropped and the way back is the same stretch undone.
H.264 in yuv420p holds only even sides: a clip with an odd side comes back one pixel wider or
taller, its last column or row repeated, rather than refused.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from soravid.config import ResolvedPreset, list_presets, resolve_preset
from soravid.errors import BadInputError, VideoReadError
from soravid.pipeline import GenerationRequest, Pipeline, ProgressCallback
from soravid.video import VideoInfo, VideoWriter, probe_video, read_frames

# Types a recipe's preset values must have to be taken as this extension's defaults.
_RECIPE_SETTINGS = {"fps": int, "steps": int, "guidance": (int, float), "width": int, "height": int}


# A clip's own frames are true ones, so its continuation starts from its last frame carried on
# by its motion (SamplerConfig.continue_from): with the embedded model all continuations of
# rendered clips keep one object; from noise, an older model kept the motion in 29% (README,
# "extend").
# Lower values score higher by copying more, bounces running through the edges.
CONTINUE_FROM = 0.5


@dataclass(frozen=True)
class Extension:
    """What extending one clip means, settled (and checked) before the model loads."""

    source: VideoInfo
    prompt: str
    seed: int
    seconds: float  # of new video
    preset: ResolvedPreset  # the canvas, frame rate and sampler the model works at
    only_new: bool = False

    @property
    def new_frames(self) -> int:
        """Frames added, at the clip's own frame rate."""
        return max(1, round(self.seconds * self.source.fps))

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) written: the clip's, each side rounded up to even."""
        return (
            self.source.width + self.source.width % 2,
            self.source.height + self.source.height % 2,
        )

    @property
    def model_frames(self) -> int:
        """Frames the model makes, at its frame rate, to cover the new ones."""
        return max(1, _nearest(self.new_frames, self.source.fps, self.preset.fps))

    def request(self) -> GenerationRequest:
        seconds = self.model_frames / self.preset.fps
        return GenerationRequest(self.prompt, self.seed, replace(self.preset, seconds=seconds))

    def adaptations(self) -> list[str]:
        """What is done to the clip to fit the model, in words; empty when it fits as it is."""
        source, preset = self.source, self.preset
        done = []
        if self.output_size != (source.width, source.height):
            width, height = self.output_size
            odd = (("column", source.width % 2), ("row", source.height % 2))
            repeated = " and ".join(name for name, is_odd in odd if is_odd)
            done.append(
                f"{source.path}: {source.width}x{source.height} has an odd side, which H.264 "
                f"(yuv420p) cannot hold: it is written at {width}x{height}, its last "
                f"{repeated} repeated"
            )
        if (source.width, source.height) != (preset.width, preset.height):
            done.append(
                f"{source.path}: its last frames are stretched from {source.width}x"
                f"{source.height} to the model's {preset.width}x{preset.height} canvas (the "
                "nearest aspect), and the continuation back"
            )
        if source.fps != preset.fps:
            done.append(
                f"{source.path}: its {source.fps:g} fps are resampled to the model's "
                f"{preset.fps} fps by picking the nearest frames, and the continuation back"
            )
        return done


@dataclass(frozen=True)
class ExtendResult:
    path: Path
    frames: int  # written in all
    original_frames: int  # of those, the source's (0 with only_new)
    new_frames: int
    width: int
    height: int
    fps: float
    wall_time: float
    model_id: str


def plan_extension(
    source: Path,
    seconds: float,
    *,
    prompt: str | None = None,
    seed: int = 0,
    only_new: bool = False,
    sampler: dict[str, Any] | None = None,
) -> Extension:
    """Read the clip's header and settle the extension; bad input raises BadInputError.

    The prompt defaults to the one in the clip's soravid recipe, as do the frame rate, steps and
    guidance; `sampler` (keys steps, guidance, continue_from, model; None values ignored)
    overrides them.
    """
    info = probe_video(source)
    recorded = _recipe_settings(info.metadata)
    canvas = _canvas(info, recorded)
    defaults = {key: recorded.get(key) for key in ("fps", "steps", "guidance")}
    defaults["continue_from"] = CONTINUE_FROM
    given = {key: value for key, value in (sampler or {}).items() if value is not None}
    preset = resolve_preset(
        "default", seconds=seconds, width=canvas[0], height=canvas[1], **(defaults | given)
    )
    return Extension(info, _prompt(info, prompt), seed, preset.seconds, preset, only_new)


def extend(
    pipeline: Pipeline,
    extension: Extension,
    output: Path,
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ExtendResult:
    """Write the clip and its continuation (or the continuation alone) to `output`."""
    start, source = time.perf_counter(), extension.source
    pipeline.check_canvas(extension.preset)
    request = extension.request()
    width, height = extension.output_size
    recipe = _recipe(pipeline, extension, request)
    with VideoWriter(output, width, height, source.fps, recipe, overwrite=overwrite) as writer:
        copy_into = None if extension.only_new else writer
        tail = _copy_source(source, copy_into, _tail_length(pipeline, extension), width, height)
        context = pipeline.encode_context(_model_context(tail, pipeline, extension))
        made = pipeline.frames(request, on_progress, context=context)
        for frame in _retime(made, extension.new_frames, extension.preset.fps, source.fps):
            back = _stretch(frame[None], source.width, source.height)
            writer.write(_pad(back, width, height)[0])
    return ExtendResult(
        path=Path(output),
        frames=writer.frames_written,
        original_frames=writer.frames_written - extension.new_frames,
        new_frames=extension.new_frames,
        width=width,
        height=height,
        fps=source.fps,
        wall_time=time.perf_counter() - start,
        model_id=pipeline.model_id,
    )


# ---------------------------------------------------------------------------- settling


def _prompt(info: VideoInfo, prompt: str | None) -> str:
    if prompt is not None:
        if not prompt.strip():
            raise BadInputError("the prompt is empty; describe what the clip shows")
        return prompt
    recorded = info.metadata.get("prompt")
    if isinstance(recorded, str) and recorded.strip():
        return recorded
    raise BadInputError(
        f"{info.path} has no soravid recipe to take the prompt from; pass --prompt to say what "
        "it shows"
    )


def _recipe_settings(recipe: dict[str, Any]) -> dict[str, Any]:
    """fps, steps, guidance and canvas of the preset a soravid clip was made with."""
    preset = recipe.get("preset")
    if not isinstance(preset, dict):
        return {}
    return {
        key: preset[key]
        for key, kind in _RECIPE_SETTINGS.items()
        if isinstance(preset.get(key), kind) and not isinstance(preset[key], bool)
    }


def _canvas(info: VideoInfo, recorded: dict[str, Any]) -> tuple[int, int]:
    """The clip's own size when a preset or its recipe uses it, else the preset canvas whose
    aspect is nearest (the default preset's on a tie)."""
    canvases = _preset_canvases()
    made_at = (recorded.get("width"), recorded.get("height"))
    if (info.width, info.height) in [*canvases, made_at]:
        return info.width, info.height
    aspect = math.log(info.width / info.height)
    return min(canvases, key=lambda canvas: abs(math.log(canvas[0] / canvas[1]) - aspect))


def _preset_canvases() -> list[tuple[int, int]]:
    names = sorted(list_presets(), key=lambda name: name != "default")
    presets = [resolve_preset(name) for name in names]
    return [(preset.width, preset.height) for preset in presets]


def _recipe(pipeline: Pipeline, extension: Extension, request: GenerationRequest) -> dict:
    """The generation recipe, plus what was extended: the source and its own recipe."""
    source = extension.source
    extended = {
        "source": str(source.path),
        "source_frames": source.frames,
        "source_size": [source.width, source.height],
        "source_fps": source.fps,
        "source_recipe": source.metadata or None,
        "seconds": extension.seconds,
        "new_frames": extension.new_frames,
        "only_new": extension.only_new,
    }
    return pipeline.recipe(request) | {"extended": extended}


# ---------------------------------------------------------------------------- frames


def _nearest(index: int, from_fps: float, to_fps: float) -> int:
    """The index at `to_fps` of the frame nearest in time to frame `index` at `from_fps`, both
    counted from the same frame 0 (halves round up)."""
    return math.floor(index * to_fps / from_fps + 0.5)


def _tail_length(pipeline: Pipeline, extension: Extension) -> int:
    """Source frames that the context picks from: the model's context span, in source frames."""
    span = pipeline.context_span()
    return _nearest(span - 1, extension.preset.fps, extension.source.fps) + 1


def _copy_source(
    info: VideoInfo, writer: VideoWriter | None, keep: int, width: int, height: int
) -> Sequence[np.ndarray]:
    """Stream the clip's frames, padded to width x height, into `writer` (None: only read
    them); return its last `keep` as read."""
    tail: deque[np.ndarray] = deque(maxlen=keep)
    for frame in read_frames(info):
        if writer is not None:
            writer.write(_pad(frame[None], width, height)[0])
        tail.append(frame)
    if not tail:
        raise VideoReadError(f"{info.path}: the video has no frames")
    return tail


def _model_context(
    tail: Sequence[np.ndarray], pipeline: Pipeline, extension: Extension
) -> list[np.ndarray]:
    """The clip's last frames at the model's rate and canvas, ending on its very last frame."""
    preset, fps = extension.preset, extension.source.fps
    picked = []
    for back in reversed(range(pipeline.context_span())):
        index = len(tail) - 1 - _nearest(back, preset.fps, fps)
        if index >= 0:
            picked.append(tail[index])
    return list(_stretch(np.stack(picked), preset.width, preset.height))


def _retime(
    frames: Iterator[np.ndarray], count: int, from_fps: float, to_fps: float
) -> Iterator[np.ndarray]:
    """`count` frames at `to_fps` from `frames` at `from_fps`: both start one frame after the
    clip's last, and each output frame is the input frame nearest its time."""
    made, frame = 0, None
    for index in range(1, count + 1):
        wanted = max(1, _nearest(index, to_fps, from_fps))
        while made < wanted:
            frame, made = next(frames), made + 1
        yield frame


def _pad(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 (T, H, W, 3) to (T, height, width, 3), no smaller, its last rows and columns
    repeated; returned as is when the size already fits."""
    _, rows, columns, _ = frames.shape
    if (rows, columns) == (height, width):
        return frames
    return np.pad(frames, ((0, 0), (0, height - rows), (0, width - columns), (0, 0)), mode="edge")


def _stretch(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 (T, H, W, 3) stretched to (T, height, width, 3): bilinear, antialiased when it
    shrinks; returned as is when the size already fits."""
    if frames.shape[1:3] == (height, width):
        return frames
    pixels = rearrange(torch.from_numpy(np.array(frames)), "t h w c -> t c h w").float()
    resized = F.interpolate(pixels, size=(height, width), mode="bilinear", antialias=True)
    return rearrange(resized.round().clamp(0, 255).to(torch.uint8), "t c h w -> t h w c").numpy()
