"""`soravid presets`, `soravid presets show NAME` and `soravid info CLIP`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soravid.cli.app import app
from soravid.cli.common import JsonOption, console, emit_json

if TYPE_CHECKING:
    from soravid.config import ResolvedPreset
    from soravid.video import VideoInfo

presets_app = typer.Typer(
    help="List the presets, or show one.",
    epilog="Examples: soravid presets · soravid presets show portrait > mine.yaml",
)
app.add_typer(presets_app, name="presets")


@presets_app.callback(invoke_without_command=True)
def presets(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the presets with their key values."""
    if ctx.invoked_subcommand is not None:
        return
    from soravid.config import list_presets, load_preset, resolve_preset

    rows = [(resolve_preset(name), load_preset(name).description) for name in list_presets()]
    if json_output:
        for resolved, description in rows:
            emit_json({**preset_record(resolved), "description": description})
        return
    console().print(_presets_table(rows))


@presets_app.command("show", epilog="Example: soravid presets show widescreen")
def show(
    name: Annotated[str, typer.Argument(help="Preset name, or a path to a preset YAML file.")],
) -> None:
    """Print a preset's resolved values as YAML (itself a valid preset file)."""
    from soravid.config import load_preset, preset_yaml, resolve_preset

    typer.echo(preset_yaml(resolve_preset(name), load_preset(name).description), nl=False)


INFO_EXAMPLES = """Examples:

  soravid info clip.mp4                  # a clip: duration, size, fps, frames, recipe

  soravid info --json *.mp4

  soravid info                           # the embedded model: id, sha256, training

  soravid info --model my-model.safetensors
"""


@app.command(epilog=INFO_EXAMPLES)
def info(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Video files.", show_default=False)
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Describe a model ('embedded' or a .safetensors file)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show a video's duration, size, fps, frame count and the soravid recipe it carries;
    without videos, describe the model (by default the embedded one): id, hash, training."""
    from soravid.errors import BadInputError
    from soravid.video import probe_video

    if model is not None or not paths:
        _model_info(model or "embedded", json_output)
    for path in paths or []:
        if path.suffix == ".safetensors":
            raise BadInputError(f"{path}: a model file, not a video; describe it with --model")
        video = probe_video(path)
        if json_output:
            emit_json(video_record(video))
        else:
            console().print(_video_table(video))


def _model_info(model: str, json_output: bool) -> None:
    from soravid.weights import describe_model, resolve_model_path

    description = describe_model(resolve_model_path(model))
    if json_output:
        emit_json(description)
        return
    table = _table_grid()
    for key, value in description.items():
        if key == "training" and value:
            losses = ", ".join(f"{k} {v}" for k, v in value["final_losses"].items())
            minutes = value["train_seconds"] / 60
            value = f"seed {value['seed']}, {minutes:.1f} min, final loss {losses}"
        table.add_row(key, str(value))
    console().print(table)


def _table_grid() -> Any:
    from rich.table import Table

    return Table.grid(padding=(0, 2))


def preset_record(resolved: ResolvedPreset) -> dict[str, Any]:
    from dataclasses import asdict

    return {**asdict(resolved), "frames": resolved.frames}


def video_record(video: VideoInfo) -> dict[str, Any]:
    return {
        "path": str(video.path),
        "width": video.width,
        "height": video.height,
        "fps": video.fps,
        "frames": video.frames,
        "seconds": video.seconds,
        "recipe": video.metadata or None,
    }


def _presets_table(rows: list[tuple[ResolvedPreset, str]]) -> Any:
    from rich.table import Table

    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("name", "size", "fps", "seconds", "steps", "guidance", "model"):
        table.add_column(column, no_wrap=True)
    table.add_column("description")
    for resolved, description in rows:
        table.add_row(
            resolved.name,
            f"{resolved.width}x{resolved.height}",
            str(resolved.fps),
            f"{resolved.seconds:g}",
            str(resolved.steps),
            f"{resolved.guidance:g}",
            resolved.model,
            description,
        )
    return table


def _video_table(video: VideoInfo) -> Any:
    from rich.markup import escape

    table = _table_grid()
    table.add_row("[bold]file[/]", escape(str(video.path)))
    table.add_row("duration", f"{video.seconds:.2f} s ({video.frames} frames at {video.fps:g} fps)")
    table.add_row("size", f"{video.width}x{video.height}")
    recipe = video.metadata
    if not recipe:
        table.add_row("recipe", "no soravid recipe")
    for key, value in recipe.items():
        if isinstance(value, dict):
            value = ", ".join(f"{inner}={setting}" for inner, setting in value.items())
        table.add_row(escape(key), escape(str(value)))
    return table
