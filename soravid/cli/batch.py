"""`soravid batch FILE|-`: many clips from one loaded model, one item per input line."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

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
    PresetOption,
    ProgressView,
    QuietOption,
    SecondsOption,
    SeedOption,
    StepsOption,
    WidthOption,
    emit_json,
    print_error,
    warn_unknown_words,
)
from soravid.errors import BadInputError, SoravidError

# Ranks meet only at the end of a batch, where the first to finish waits for the slowest.
BATCH_TIMEOUT = timedelta(days=7)

if TYPE_CHECKING:
    from soravid.batch import BatchItem, BatchSummary, ItemResult
    from soravid.pipeline import ProgressEvent

EXAMPLES = """Examples:

  soravid batch prompts.txt --out-dir clips

  printf '%s\\n' "a red circle" "a blue square" | soravid batch - --json

  soravid batch items.jsonl -d clips --skip-existing   # resume a batch

  torchrun --standalone --nproc-per-node 8 -m soravid batch items.jsonl -d clips   # 8 GPUs

A line is a prompt, or a JSON object with the keys prompt (required),
seconds, seed, preset and output, e.g.
{"prompt": "a red ball", "seconds": 3, "seed": 7, "output": "red.mp4"}
"""


@app.command(epilog=EXAMPLES)
def batch(
    source: Annotated[
        str, typer.Argument(metavar="FILE|-", help="Items, one per line; - reads stdin.")
    ],
    out_dir: Annotated[
        Path, typer.Option("--out-dir", "-d", help="Folder for the clips and manifest.jsonl.")
    ] = Path("."),
    skip_existing: Annotated[
        bool,
        typer.Option("--skip-existing", help="An item whose file exists is done: skip it."),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace output files that exist.")
    ] = False,
    seed: SeedOption = 0,
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
    continue_from: ContinueFromOption = None,
    model: ModelOption = None,
    device: DeviceOption = Device.auto,
) -> None:
    """Generate one video per input line with one loaded model.

    The flags are every item's defaults; an item's own keys override them.
    Clips are named after prompt and seed (or the item's output) under
    --out-dir; each item's result is appended to <out-dir>/manifest.jsonl.
    stdout lists the clips (with --json, one JSON object per item). A bad
    item is reported on stderr and the rest is made; exit 1 if any failed.
    Under torchrun each process makes every n-th item.
    """
    from soravid.batch import Batch, BatchSettings, merge_manifest_parts, read_entries
    from soravid.distributed import launch_from_env, process_group

    flags = dict(seconds=seconds, fps=fps, width=width, height=height, aspect=aspect)
    flags |= dict(steps=steps, guidance=guidance, continue_from=continue_from, model=model)
    overrides = {key: value for key, value in flags.items() if value is not None}
    settings = BatchSettings(
        out_dir=out_dir,
        preset=preset,
        overrides=overrides,
        seed=seed,
        skip_existing=skip_existing,
        overwrite=overwrite,
        device=device.value,
    )
    launch = launch_from_env()
    if launch.distributed and source == "-":
        raise BadInputError("under torchrun every process reads the items: pass a FILE, not -")
    with process_group("gloo", BATCH_TIMEOUT):
        with _open_input(source) as lines, BatchView(quiet, json_output) as view:
            runner = Batch(settings, view, launch.rank, launch.world_size)
            summary = runner.run(read_entries(lines, _source_name(source)))
        summary = summary.over_all_ranks()  # also waits for every rank to finish
    if launch.rank == 0:
        merge_manifest_parts(out_dir)
        _finish(summary, runner.manifest, quiet)
    elif summary.counts["failed"]:
        raise typer.Exit(1)  # rank 0 says why


def _source_name(source: str) -> str:
    return "stdin" if source == "-" else source


def _open_input(source: str) -> AbstractContextManager[TextIO]:
    if source == "-":
        return nullcontext(sys.stdin)  # stdin stays open: it is not ours to close
    path = Path(source)
    if not path.exists():
        raise BadInputError(f"batch file not found: {path}")
    if not path.is_file():
        raise BadInputError(f"batch file is not a file: {path}")
    try:
        return path.open(encoding="utf-8")
    except OSError as error:
        raise BadInputError(f"cannot read batch file {path}: {error.strerror}") from None


def _finish(summary: BatchSummary, manifest: Path, quiet: bool) -> None:
    counts = summary.counts
    tally = f"{counts['ok']} made, {counts['skipped']} skipped, {counts['failed']} failed"
    if counts["failed"]:
        total = summary.total
        raise SoravidError(f"{counts['failed']} of {total} items failed ({tally}); see {manifest}")
    if not quiet:
        typer.echo(f"batch done: {tally}; manifest {manifest}", err=True)


class BatchView:
    """Renders a batch: per item a header, progress and a result line on stderr; the clip's
    path (or its JSON record) on stdout. A context manager, so Ctrl-C stops the progress bars."""

    def __init__(self, quiet: bool, json_output: bool) -> None:
        self.quiet, self.json_output = quiet, json_output
        self._progress: ProgressView | None = None

    def __enter__(self) -> BatchView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop_progress()

    def item_started(self, item: BatchItem, unknown_words: list[str]) -> None:
        if not self.quiet:
            typer.echo(f"line {item.line}: {item.prompt} -> {item.output}", err=True)
        warn_unknown_words(unknown_words, where=f"line {item.line}: ")
        self._progress = ProgressView(self.quiet).__enter__()

    def progress(self, event: ProgressEvent) -> None:
        if self._progress is not None:
            self._progress(event)

    def item_finished(self, result: ItemResult) -> None:
        self._stop_progress()
        if result.status == "failed":
            print_error(f"line {result.line}: {result.error}")
        elif not self.quiet:
            typer.echo(_result_line(result), err=True)
        if self.json_output:
            emit_json(result.record())
        elif result.status != "failed":
            typer.echo(result.path)

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
            self._progress = None


def _result_line(result: ItemResult) -> str:
    if result.status == "skipped":
        return f"line {result.line}: skipped {result.path} (it exists)"
    made = f"{result.frames} frames in {result.wall_time:.1f} s"
    return f"line {result.line}: wrote {result.path} ({made})"
