"""`soravid generate PROMPT`: resolve the preset, load the model, write one MP4."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soravid.cli.app import app
from soravid.cli.common import (
    AspectOption,
    Device,
    DeviceOption,
    FpsOption,
    GuidanceOption,
    HeightOption,
    JsonOption,
    ModelOption,
    PresetOption,
    ProgressView,
    QuietOption,
    SecondsOption,
    SeedOption,
    StepsOption,
    WidthOption,
    default_output_path,
    emit_json,
    warn,
)
from soravid.errors import BadInputError

if TYPE_CHECKING:
    from soravid.config import ResolvedPreset
    from soravid.pipeline import GenerationResult

EXAMPLES = """Examples:

  soravid generate "a big red ball bouncing on a black background"

  soravid generate "a small green square moving left" --preset portrait --seconds 10 -o clip.mp4

  echo "a blue circle moving up" | soravid generate - --seed 3
"""


@app.command(epilog=EXAMPLES)
def generate(
    prompt: Annotated[
        str, typer.Argument(help="What the video shows; - reads it from stdin.", show_default=False)
    ],
    seed: SeedOption = 0,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="MP4 to write (default: <prompt-slug>-s<seed>.mp4)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the output file if it exists.")
    ] = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    preset: PresetOption = "default",
    seconds: SecondsOption = None,
    fps: FpsOption = None,
    width: WidthOption = None,
    height: HeightOption = None,
    aspect: AspectOption = None,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    model: ModelOption = None,
    device: DeviceOption = Device.auto,
) -> None:
    """Generate a video from a sentence and write it as an MP4."""
    from soravid.config import resolve_preset
    from soravid.video import check_output_path

    if prompt == "-":
        prompt = " ".join(sys.stdin.read().split())  # one line, however it was piped
    if not prompt.strip():
        raise BadInputError("the prompt is empty; describe the video to make")
    overrides = dict(seconds=seconds, fps=fps, width=width, height=height, aspect=aspect)
    resolved = resolve_preset(preset, **overrides, steps=steps, guidance=guidance, model=model)
    path = output or default_output_path(prompt, seed)
    check_output_path(path, overwrite)  # before loading the model: bad input fails fast
    result = _generate(prompt, seed, resolved, path, overwrite, device.value, quiet)
    if json_output:
        emit_json(_result_record(result, prompt, seed, resolved))
    else:
        typer.echo(str(result.path))


def _generate(
    prompt: str,
    seed: int,
    resolved: ResolvedPreset,
    path: Path,
    overwrite: bool,
    device: str,
    quiet: bool,
) -> GenerationResult:
    from soravid.pipeline import GenerationRequest, Pipeline

    pipeline = Pipeline.load(resolved.model, device)
    if unknown := pipeline.unknown_words(prompt):
        words = ", ".join(f"'{word}'" for word in unknown)
        warn(f"the model does not know {words}; generating anyway")
    pipeline.check_canvas(resolved)
    request = GenerationRequest(prompt=prompt, seed=seed, preset=resolved)
    with ProgressView(quiet) as progress:
        result = pipeline.generate(request, path, overwrite=overwrite, on_progress=progress)
    if not quiet:
        summary = f"{result.frames} frames, {resolved.width}x{resolved.height} @ {resolved.fps} fps"
        typer.echo(f"wrote {result.path} ({summary}) in {result.wall_time:.1f} s", err=True)
    return result


def _result_record(
    result: GenerationResult, prompt: str, seed: int, resolved: ResolvedPreset
) -> dict[str, Any]:
    return {
        "path": str(result.path),
        "prompt": prompt,
        "seed": seed,
        "seconds": result.seconds,
        "frames": result.frames,
        "fps": resolved.fps,
        "width": resolved.width,
        "height": resolved.height,
        "model": result.model_id,
        "wall_time": result.wall_time,
    }
