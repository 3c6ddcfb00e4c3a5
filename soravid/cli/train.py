"""`soravid train`: train a model from a named recipe, checkpointing, then export it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from soravid.cli.app import app
from soravid.cli.common import QuietOption, console, is_animated
from soravid.errors import BadInputError

if TYPE_CHECKING:
    from soravid.training.trainer import TrainEvent

EXAMPLES = """Examples:

  soravid train --recipe shapes --out runs/shapes        # the embedded model (about 2 h, 2 cores)

  soravid train --recipe shapes --out runs/shapes --resume   # continue after an interruption

  soravid train --recipe shapes --out runs/shapes --export soravid/weights/shapes.safetensors
"""


@app.command(epilog=EXAMPLES)
def train(
    recipe: Annotated[str, typer.Option("--recipe", help="Named training recipe.")] = "shapes",
    out: Annotated[
        Path, typer.Option("--out", help="Run folder: checkpoint, model, loss curves.")
    ] = Path("runs/shapes"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Also write the trained model here (.safetensors)."),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Train the autoencoder, then the DiT and text encoder, on shapes-world clips rendered on
    the fly; write <out>/model.safetensors and <out>/losses.png at the end."""
    from soravid.training.checkpoint import CHECKPOINT_NAME
    from soravid.training.recipes import RECIPES, get_recipe

    if recipe not in RECIPES:
        raise BadInputError(f"unknown recipe {recipe!r}; known: {', '.join(sorted(RECIPES))}")
    if resume and not (out / CHECKPOINT_NAME).is_file():
        raise BadInputError(f"nothing to resume: no {CHECKPOINT_NAME} in {out}")
    if not resume and (out / CHECKPOINT_NAME).exists():
        raise BadInputError(f"{out} already holds a run; pass --resume or pick another --out")
    _train(get_recipe(recipe), out, resume, export, quiet)


def _train(recipe, out: Path, resume: bool, export: Path | None, quiet: bool) -> None:
    from soravid.training.export import export_model, loss_curves
    from soravid.training.trainer import train as run_training

    state = run_training(recipe, out, resume, on_progress=None if quiet else TrainProgress())
    model_path = out / "model.safetensors"
    export_model(out, model_path)
    loss_curves(state.losses, out / "losses.png")
    if export is not None:
        export_model(out, export)
    if not quiet:
        minutes = state.seconds / 60
        console(stderr=True).print(f"trained in {minutes:.1f} min; model: {export or model_path}")
    typer.echo(str(export or model_path))


class TrainProgress:
    """A line on stderr every so many steps, and at the end of each stage."""

    def __init__(self, every: int = 10) -> None:
        self.every = every if is_animated() else 50

    def __call__(self, event: TrainEvent) -> None:
        if event.step % self.every and event.step != event.steps:
            return
        eta = "?" if event.eta is None else f"{event.eta / 60:.1f} min"
        typer.echo(
            f"{event.stage} step {event.step}/{event.steps}  loss {event.loss:.4f}  "
            f"{event.steps_per_second:.2f} steps/s  ETA {eta}",
            err=True,
        )
