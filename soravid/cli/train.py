"""`soravid train`: train a model from a named recipe, checkpointing, then export it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from soravid.cli.app import app
from soravid.cli.common import QuietOption, console, is_animated
from soravid.errors import BadInputError
from soravid.training.recipes import EMBEDDED_RECIPE

if TYPE_CHECKING:
    from soravid.training.trainer import TrainEvent

EXAMPLES = """Examples:

  soravid train --out runs/shapes          # the embedded recipe (2 h on 2 AMX cores)

  soravid train --out runs/shapes --resume   # continue after an interruption

  soravid train --out runs/shapes --export soravid/weights/shapes.safetensors

  soravid train --from shapes-placed-bf16.safetensors --out runs/opening
      # the opening stage alone, from a model with the recipe's first two stages

  soravid train --recipe tiny --out runs/tiny   # seconds: a model for tests

  torchrun --standalone --nproc-per-node 8 -m soravid train --recipe S --out runs/S   # 8 GPUs
"""


@app.command(epilog=EXAMPLES)
def train(
    recipe: Annotated[
        str, typer.Option("--recipe", help="Named training recipe (default: the embedded model's).")
    ] = EMBEDDED_RECIPE,
    out: Annotated[
        Path, typer.Option("--out", help="Run folder: checkpoint, model, loss curves.")
    ] = Path("runs/shapes"),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")
    ] = False,
    start_from: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Start at the recipe's opening, decoder, tune or opening_tune stage from this "
            "model file, which the same recipe's earlier stages exported: the run as if it had "
            "gone on from them.",
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Also write the trained model here (.safetensors)."),
    ] = None,
    accumulate: Annotated[
        int,
        typer.Option(
            "--accumulate",
            min=1,
            help="Micro-batches per step and process (gradient accumulation); a step trains "
            "on batch_size x processes x this clips. Resume needs the same processes x this.",
        ),
    ] = 1,
    quiet: QuietOption = False,
) -> None:
    """Train the autoencoder, then the DiT and text encoder, on shapes-world clips rendered on
    the fly (then distil the guidance of a DiT that takes its scale, or train an opening DiT
    for a model that has one, and the decoder alone, the DiT and the opening DiT again on
    their hardest cases where the recipe says); write <out>/model.safetensors and
    <out>/losses.png at the end.

    Under torchrun every process trains its share of each batch (DistributedDataParallel) and
    rank 0 writes the checkpoint, model, curves and progress."""
    from soravid.distributed import is_main, process_group
    from soravid.training.recipes import RECIPES, get_recipe
    from soravid.training.trainer import train as run_training

    if recipe not in RECIPES:
        raise BadInputError(f"unknown recipe {recipe!r}; known: {', '.join(sorted(RECIPES))}")
    if resume and start_from is not None:
        raise BadInputError("--from starts a run; to continue one, pass --resume alone")
    _check_run_folder(out, resume)
    with process_group():
        progress = None if quiet else TrainProgress()
        state = run_training(get_recipe(recipe), out, resume, progress, accumulate, start_from)
        if is_main():
            _finish(state, out, export, quiet)


def _check_run_folder(out: Path, resume: bool) -> None:
    """Every rank checks before any joins the others, so none can see rank 0's new
    checkpoint as an old run."""
    from soravid.training.checkpoint import CHECKPOINT_NAME

    if resume and not (out / CHECKPOINT_NAME).is_file():
        raise BadInputError(f"nothing to resume: no {CHECKPOINT_NAME} in {out}")
    if not resume and (out / CHECKPOINT_NAME).exists():
        raise BadInputError(f"{out} already holds a run; pass --resume or pick another --out")


def _finish(state, out: Path, export: Path | None, quiet: bool) -> None:
    """Rank 0's part: the model file(s) and the loss curves."""
    from soravid.training.export import export_model, loss_curves

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
