"""`soravid judge`, `soravid contact` and `soravid eval`: look at clips against the shapes world."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soravid.cli.app import app
from soravid.cli.common import (
    ContinueFromOption,
    Device,
    DeviceOption,
    JsonOption,
    ModelOption,
    PresetOption,
    QuietOption,
    SecondsOption,
    SeedOption,
    console,
    emit_json,
    is_animated,
    quoted,
    warn,
)
from soravid.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from soravid.evaluate import EvalProgress
    from soravid.world.judge import Verdict

ClipArgument = Annotated[Path, typer.Argument(help="A video file.", show_default=False)]
EXIT_MISMATCH = 1


@app.command(
    epilog='Example: soravid judge clip.mp4 "a big red ball bouncing on a black background"'
)
def judge(
    clip: ClipArgument,
    caption: Annotated[str, typer.Argument(help="What the clip should show.", show_default=False)],
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Judge a clip against a shapes-world caption, per 5-second window.

    Exit 0 when every window matches, 1 when one does not, 2 for bad input.
    """
    from soravid.world.judge import judge_video

    with _frame_progress(quiet) as progress:
        verdict = judge_video(clip, caption, on_progress=progress)
    if verdict.unknown_words:
        warn(f"the judge ignores {quoted(verdict.unknown_words)} (not in the shapes world)")
    if json_output:
        emit_json(verdict.to_dict())
    else:
        console().print(_verdict_table(verdict))
        console().print(_verdict_summary(verdict))
    if not verdict.passed:
        raise typer.Exit(EXIT_MISMATCH)


@contextmanager
def _frame_progress(quiet: bool) -> Iterator[Any]:
    """A transient bar of frames judged on a terminal; no callback otherwise."""
    if quiet or not is_animated():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bars = Progress(TextColumn("judging"), BarColumn(), MofNCompleteColumn(), transient=True,
                    console=console(stderr=True))  # fmt: skip
    task = bars.add_task("frames", total=None)
    with bars:
        yield lambda done, total: bars.update(task, completed=done, total=total)


def _verdict_table(verdict: Verdict) -> Any:
    from rich.table import Table

    table = Table(title=f"{verdict.path}: {verdict.caption}", header_style="bold", box=None)
    table.add_column("window", no_wrap=True)
    for name in verdict.windows[0].checks:
        table.add_column(name, no_wrap=True)
    table.add_column("verdict")
    for window in verdict.windows:
        cells = [f"{window.start:g}-{window.end:g} s"]
        for name, ok in window.checks.items():
            seen = window.measured.get(name) if name != "object" else _objects(window.values)
            cells.append(f"[{'green' if ok else 'red'}]{seen or 'none'}[/]")
        cells.append("[green]match[/]" if window.passed else "[bold red]mismatch[/]")
        table.add_row(*cells)
    return table


def _objects(values: dict) -> str:
    return f"one in {values['one_object_share']:.0%}"


def _verdict_summary(verdict: Verdict) -> str:
    if verdict.passed:
        count = len(verdict.windows)
        return f"[green]every window matches[/] ({count} window{'s' * (count > 1)})"
    worst = verdict.windows[verdict.worst]
    return (
        f"[bold red]mismatch[/]: worst window {worst.start:g}-{worst.end:g} s, "
        f"drift {verdict.drift:+.2f} (first minus last window's share of checks passed)"
    )


@app.command(epilog="Example: soravid contact clip.mp4 -o sheet.png")
def contact(
    clip: ClipArgument,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="PNG to write (default: <clip>-contact.png)."),
    ] = None,
    tiles: Annotated[
        int | None, typer.Option("--tiles", min=1, max=400, help="Frames on the sheet.")
    ] = None,
    columns: Annotated[int | None, typer.Option("--columns", min=1, max=40)] = None,
) -> None:
    """Make a contact sheet: a grid of a video's frames over time, as a PNG."""
    from soravid.world.contact import contact_sheet, write_png

    output = output or clip.with_name(f"{clip.stem}-contact.png")
    if output.suffix.lower() != ".png":
        raise BadInputError(f"the contact sheet must be a .png file, got {output}")
    if not output.parent.is_dir():
        raise BadInputError(f"output folder does not exist: {output.parent}")
    typer.echo(str(write_png(contact_sheet(clip, tiles, columns), output)))


EVAL_EXAMPLES = """Examples:

  soravid eval --n 100

  soravid eval --n 20 --seconds 60 --model run/shapes.safetensors --out-dir eval-minute
"""


@app.command("eval", epilog=EVAL_EXAMPLES)
def eval_command(
    n: Annotated[int, typer.Option("--n", min=1, help="How many clips to generate.")] = 100,
    preset: PresetOption = "default",
    seconds: SecondsOption = None,
    seed: SeedOption = 0,
    continue_from: ContinueFromOption = None,
    model: ModelOption = None,
    device: DeviceOption = Device.auto,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Folder for clips and reports (default: eval-s<seed>)."),
    ] = None,
    canonical: Annotated[
        bool, typer.Option("--canonical", help="Canonical captions instead of paraphrases.")
    ] = False,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Generate clips for seeded random captions, judge each, and report accuracy."""
    from soravid.config import resolve_preset
    from soravid.evaluate import evaluate
    from soravid.pipeline import Pipeline

    resolved = resolve_preset(preset, seconds=seconds, continue_from=continue_from, model=model)
    folder = out_dir or Path(f"eval-s{seed}")
    if folder.exists() and not folder.is_dir():
        raise BadInputError(f"--out-dir is a file, not a folder: {folder}")
    pipeline = Pipeline.load(resolved.model, device.value)
    with _EvalView(quiet) as view:
        report = evaluate(pipeline, resolved, n, seed, folder, canonical, on_progress=view)
    if report["model_unknown_words"]:
        named = quoted(report["model_unknown_words"])
        warn(f"the model does not know {named}, used in some captions")
    summary = {key: report[key] for key in ("clips", "accuracy", "every_window", "drift")}
    if json_output:
        emit_json({**summary, "model": report["model"], "out_dir": str(folder)})
    elif not quiet:
        console().print(_accuracy_table(report))
        console().print(f"clips, report.json and charts in {folder}")


class _EvalView:
    """Eval progress on stderr: a bar of clips on a terminal, else one line per judged clip."""

    def __init__(self, quiet: bool) -> None:
        self.mode = "off" if quiet else "bars" if is_animated() else "lines"
        self._bars: Any = None

    def __enter__(self) -> _EvalView:
        if self.mode == "bars":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bars = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), console=console(stderr=True),
                                  transient=True)  # fmt: skip
            self._bars.start()
            self._task = self._bars.add_task("clips", total=None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bars is not None:
            self._bars.stop()

    def __call__(self, event: EvalProgress) -> None:
        if self.mode == "bars":
            done = event.clip - (event.phase != "judged")
            label = f"clip {event.clip}: {event.caption}"
            self._bars.update(self._task, completed=done, total=event.clips, description=label)
        elif self.mode == "lines" and event.verdict is not None:
            result = "match" if event.verdict.passed else "mismatch"
            typer.echo(f"clip {event.clip} of {event.clips}: {result}: {event.caption}", err=True)


def _accuracy_table(report: dict) -> Any:
    from rich.table import Table

    table = Table(title=f"{report['clips']} clips, model {report['model']}", box=None)
    table.add_column("check", style="bold")
    table.add_column("accuracy", justify="right")
    for name, share in report["accuracy"].items():
        table.add_row(name, f"{share:.0%}")
    table.add_row("every window", f"{report['every_window']:.0%}")
    table.add_row("drift", f"{report['drift']:+.2f}")
    return table
