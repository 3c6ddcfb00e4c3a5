"""`soravid generate PROMPT`: resolve the preset, load the model, write one MP4."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soravid.cli.app import app
from soravid.cli.common import (
    AspectOption,
    ContinueFromOption,
    Device,
    DeviceOption,
    FpsOption,
    GuidanceOption,
    HeightOption,
    JsonOption,
    ModelOption,
    OverwriteOption,
    PresetOption,
    ProgressView,
    QuietOption,
    SecondsOption,
    SeedOption,
    StepsOption,
    WidthOption,
    default_output_path,
    emit_json,
    format_duration,
    warn_unknown_words,
)
from soravid.errors import BadInputError

if TYPE_CHECKING:
    from soravid.config import ResolvedPreset
    from soravid.pipeline import GenerationPlan, GenerationRequest, GenerationResult

EXAMPLES = """Examples:

  soravid generate "a big red ball bouncing on a black background"

  soravid generate "a small green square moving left" --preset portrait --seconds 10 -o clip.mp4

  echo "a blue circle moving up" | soravid generate - --seed 3

  soravid generate "a white circle moving right" --seconds 600 --dry-run
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
    overwrite: OverwriteOption = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan (chunks, steps, estimated time and peak memory); make nothing.",
        ),
    ] = False,
    preset: PresetOption = "default",
    seconds: SecondsOption = None,
    fps: FpsOption = None,
    width: WidthOption = None,
    height: HeightOption = None,
    aspect: AspectOption = None,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    continue_from: ContinueFromOption = None,
    model: ModelOption = None,
    device: DeviceOption = Device.auto,
) -> None:
    """Generate a video from a sentence and write it as an MP4."""
    from soravid.config import resolve_preset
    from soravid.pipeline import GenerationRequest
    from soravid.video import check_output_path

    if prompt == "-":
        prompt = " ".join(sys.stdin.read().split())  # one line, however it was piped
    if not prompt.strip():
        raise BadInputError("the prompt is empty; describe the video to make")
    overrides = dict(seconds=seconds, fps=fps, width=width, height=height, aspect=aspect)
    sampler = dict(steps=steps, guidance=guidance, continue_from=continue_from, model=model)
    resolved = resolve_preset(preset, **overrides, **sampler)
    path = output or default_output_path(prompt, seed)
    check_output_path(path, overwrite)  # before loading the model: bad input fails fast
    if dry_run:
        _show_plan(GenerationRequest(prompt, seed, resolved), path, device.value, json_output)
        return
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
    warn_unknown_words(pipeline.unknown_words(prompt))
    pipeline.check_canvas(resolved)
    request = GenerationRequest(prompt=prompt, seed=seed, preset=resolved)
    with ProgressView(quiet) as progress:
        result = pipeline.generate(request, path, overwrite=overwrite, on_progress=progress)
    if not quiet:
        summary = f"{result.frames} frames, {resolved.width}x{resolved.height} @ {resolved.fps} fps"
        typer.echo(f"wrote {result.path} ({summary}) in {result.wall_time:.1f} s", err=True)
    return result


def _show_plan(request: GenerationRequest, path: Path, device: str, json_output: bool) -> None:
    """Plan the clip with the model's networks at random weights: only its header is read."""
    from soravid.pipeline import Pipeline

    pipeline = Pipeline.from_header(request.preset.model, device)
    pipeline.check_canvas(request.preset)
    plan = pipeline.plan(request)
    record = {"path": str(path), "model": pipeline.model_id, "device": pipeline.device.type}
    if json_output:
        emit_json(record | asdict(plan))
    else:
        typer.echo(_plan_text(plan, request.preset, record))


def _plan_text(plan: GenerationPlan, preset: ResolvedPreset, record: dict[str, Any]) -> str:
    size = f"{preset.width}x{preset.height} @ {preset.fps} fps"
    latent = "x".join(str(side) for side in plan.latent_size)
    peak = "unknown" if plan.estimated_peak_mb is None else f"{plan.estimated_peak_mb:.0f} MB"
    rows = [
        ("output", f"{record['path']} (nothing written: dry run)"),
        ("model", f"{record['model']} on {record['device']}"),
        ("frames", f"{plan.frames} ({preset.seconds:g} s, {size})"),
        ("latent frames", f"{plan.latent_frames} of {latent}"),
        ("chunks", _chunks_text(plan)),
        ("context", f"{_count(plan.context_frames, 'latent frame')} per chunk after the first"),
        ("steps", f"{plan.steps} per chunk, {plan.model_passes} model passes in all"),
        ("estimated time", _plan_duration(plan.estimated_seconds)),
        ("estimated peak", peak),
        ("estimated how", plan.estimate),
    ]
    return "\n".join(f"{name:<15} {value}" for name, value in rows)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _chunks_text(plan: GenerationPlan) -> str:
    text = f"{plan.chunks} of {plan.window_frames} latent frames"
    if plan.first_chunk_frames < plan.window_frames and plan.chunks > 1:
        text += f", the first {plan.first_chunk_frames} made alone"
    return text


def _plan_duration(seconds: float) -> str:
    rounded = f" ({format_duration(seconds)})" if seconds >= 60 else ""
    return f"{seconds:.1f} s{rounded}"


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
