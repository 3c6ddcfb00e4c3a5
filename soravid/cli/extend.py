"""`soravid extend CLIP`: the clip, then what the model makes after it, in one MP4."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soravid.cli.app import app
from soravid.cli.common import (
    ContinueFromOption,
    Device,
    DeviceOption,
    GuidanceOption,
    JsonOption,
    ModelOption,
    OverwriteOption,
    ProgressView,
    QuietOption,
    SeedOption,
    StepsOption,
    emit_json,
    warn,
    warn_unknown_words,
)
from soravid.naming import extended_output_path

if TYPE_CHECKING:
    from soravid.extend import ExtendResult, Extension

EXAMPLES = """Examples:

  soravid extend a-big-red-ball-bouncing-s0.mp4 --seconds 10

  soravid extend holiday.mp4 --prompt "a white circle moving right" -o more.mp4

  soravid extend clip.mp4 --seconds 60 --only-new --seed 2 --json
"""


@app.command(epilog=EXAMPLES)
def extend(
    source: Annotated[Path, typer.Argument(help="The video to continue.", show_default=False)],
    seconds: Annotated[float, typer.Option("--seconds", help="Seconds of video to add.")] = 5.0,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt", help="What the clip shows (default: the prompt in its soravid recipe)."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="MP4 to write (default: <stem>-extended.mp4)."),
    ] = None,
    only_new: Annotated[
        bool, typer.Option("--only-new", help="Write only the continuation, not the clip.")
    ] = False,
    seed: SeedOption = 0,
    overwrite: OverwriteOption = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    continue_from: ContinueFromOption = None,
    model: ModelOption = None,
    device: DeviceOption = Device.auto,
) -> None:
    """Continue a video: the clip as it is, then the model's continuation of it.

    Any video ffmpeg reads: other sizes and rates are fitted to the model and back (warned).
    """
    from soravid.extend import plan_extension
    from soravid.video import check_output_path

    sampler = dict(steps=steps, guidance=guidance, continue_from=continue_from, model=model)
    extension = plan_extension(
        source, seconds, prompt=prompt, seed=seed, only_new=only_new, sampler=sampler
    )
    path = output or extended_output_path(source)
    check_output_path(path, overwrite)  # before loading the model: bad input fails fast
    for adaptation in extension.adaptations():
        warn(adaptation)
    result = _extend(extension, path, overwrite, device.value, quiet)
    if json_output:
        emit_json(_result_record(result, extension))
    else:
        typer.echo(str(result.path))


def _extend(
    extension: Extension, path: Path, overwrite: bool, device: str, quiet: bool
) -> ExtendResult:
    from soravid.extend import extend as extend_clip
    from soravid.pipeline import Pipeline

    pipeline = Pipeline.load(extension.preset.model, device)
    warn_unknown_words(pipeline.unknown_words(extension.prompt))
    made_by = extension.source.metadata.get("model")
    if made_by and made_by != pipeline.model_id:
        warn(f"{extension.source.path} was made by model {made_by}; {pipeline.model_id} goes on")
    with ProgressView(quiet) as progress:
        result = extend_clip(pipeline, extension, path, overwrite, progress)
    if not quiet:
        frames = f"{result.original_frames} original + {result.new_frames} new frames"
        size = f"{result.width}x{result.height} @ {result.fps:g} fps"
        typer.echo(f"wrote {result.path} ({frames}, {size}) in {result.wall_time:.1f} s", err=True)
    return result


def _result_record(result: ExtendResult, extension: Extension) -> dict[str, Any]:
    return {
        "path": str(result.path),
        "source": str(extension.source.path),
        "prompt": extension.prompt,
        "seed": extension.seed,
        "frames": result.frames,
        "original_frames": result.original_frames,
        "new_frames": result.new_frames,
        "seconds": result.frames / result.fps,
        "fps": result.fps,
        "width": result.width,
        "height": result.height,
        "model": result.model_id,
        "wall_time": result.wall_time,
    }
