"""What every command shares: consoles, messages, --json records, output names, preset flags,
and the rendering of generation progress.

Messages and progress go to stderr, results to stdout. Nothing heavy is imported at module
level (no torch, numpy or omegaconf), so `soravid --help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soravid.naming import default_output_path, slugify  # noqa: F401  (shared by the commands)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from soravid.pipeline import ProgressEvent

PRESET_FLAGS = "Preset (each flag overrides the preset)"


# ---------------------------------------------------------------------------- consoles, messages


def console(stderr: bool = False) -> Console:
    """A rich console; rich itself drops colour when NO_COLOR is set or the stream is no TTY."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def print_error(message: str) -> None:
    _print_message("[bold red]error:[/]", message)


def warn(message: str) -> None:
    _print_message("[bold yellow]warning:[/]", message)


def quoted(words: list[str]) -> str:
    """ "'a', 'b'": words named in a message."""
    return ", ".join(f"'{word}'" for word in words)


def warn_unknown_words(words: list[str], where: str = "") -> None:
    """Name the prompt's words the model does not know, if any; it generates anyway.
    `where` prefixes the message (a batch names the input line)."""
    if words:
        warn(f"{where}the model does not know {quoted(words)}; generating anyway")


def _print_message(label: str, message: str) -> None:
    from rich.markup import escape

    # soft_wrap keeps a message on one line, whatever the terminal width.
    console(stderr=True).print(f"{label} {escape(message)}", soft_wrap=True)


def emit_json(record: dict[str, Any]) -> None:
    """One JSON object per line on stdout (one line per produced file)."""
    typer.echo(json.dumps(record))


def is_animated(stream: Any = None) -> bool:
    """Whether a stream may show colour and animation: a terminal, and NO_COLOR unset."""
    stream = stream or sys.stderr
    return stream.isatty() and not os.environ.get("NO_COLOR")


# ---------------------------------------------------------------------------- shared options


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def _preset_flag(*names: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=PRESET_FLAGS, **kwargs)


PresetOption = Annotated[
    str,
    _preset_flag("--preset", "-p", help="Preset name (see `soravid presets`) or a YAML file."),
]
SecondsOption = Annotated[float | None, _preset_flag("--seconds", help="Duration in seconds.")]
FpsOption = Annotated[int | None, _preset_flag("--fps", help="Frames per second (1-60).")]
WidthOption = Annotated[int | None, _preset_flag("--width", help="Width in pixels.")]
HeightOption = Annotated[int | None, _preset_flag("--height", help="Height in pixels.")]
AspectOption = Annotated[
    str | None,
    _preset_flag("--aspect", help="Aspect W:H, e.g. 16:9, keeping the preset's short side."),
]
StepsOption = Annotated[int | None, _preset_flag("--steps", help="Sampler steps.")]
GuidanceOption = Annotated[
    float | None, _preset_flag("--guidance", help="Classifier-free guidance scale.")
]
ContinueFromOption = Annotated[
    float | None,
    _preset_flag(
        "--continue-from",
        help="Flow time (0-1] a continuing chunk's new frames start at, from the clip's opening "
        "(or the last frame of a clip extended) carried on by its motion; 1: from noise.",
    ),
]
ModelOption = Annotated[
    str | None, _preset_flag("--model", help="'embedded' or a .safetensors file.")
]
DeviceOption = Annotated[Device, typer.Option("--device", help="Where the model runs.")]
SeedOption = Annotated[
    int, typer.Option("--seed", min=0, help="Random seed (same seed, same video).")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object per result on stdout.")
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace the output file if it exists.")
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or summary; warnings and errors only.")
]


# ---------------------------------------------------------------------------- progress


class ProgressView:
    """Renders generation ProgressEvents on stderr: rich bars on a terminal, plain lines
    (one per finished phase of a chunk) when stderr is not a terminal or NO_COLOR is set,
    nothing when quiet. Use it as a context manager and pass it as `on_progress`.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.mode = "off" if quiet else "bars" if is_animated() else "lines"
        self._bars: Progress | None = None
        self._last_line: tuple[str, int] | None = None
        self._chunk_task = self._step_task = 0

    def __enter__(self) -> ProgressView:
        if self.mode == "bars":
            self._bars = _progress_bars()
            self._bars.start()
            self._chunk_task = self._bars.add_task("chunks", total=None, eta="")
            self._step_task = self._bars.add_task("steps", total=None, eta="")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bars is not None:
            self._bars.stop()

    def __call__(self, event: ProgressEvent) -> None:
        if self.mode == "bars":
            self._update_bars(event)
        elif self.mode == "lines" and event.step == event.steps:
            if self._last_line != (event.phase, event.chunk):  # one line per finished phase
                self._last_line = (event.phase, event.chunk)
                typer.echo(progress_line(event), err=True)

    def _update_bars(self, event: ProgressEvent) -> None:
        assert self._bars is not None
        self._bars.update(
            self._chunk_task,
            description=f"chunk {event.chunk} of {event.chunks}",
            completed=event.chunk - 1,
            total=event.chunks,
            eta=f"ETA {format_duration(event.eta)}",
        )
        self._bars.update(
            self._step_task,
            description=f"{event.phase}: step {event.step} of {event.steps}",
            completed=event.step,
            total=event.steps,
        )


def progress_line(event: ProgressEvent) -> str:
    """'chunk 2 of 5: denoise step 8 of 8, 1.2 s elapsed, ETA 4 s'."""
    return (
        f"chunk {event.chunk} of {event.chunks}: {event.phase} step {event.step} of "
        f"{event.steps}, {event.elapsed:.1f} s elapsed, ETA {format_duration(event.eta)}"
    )


def format_duration(eta: float | None) -> str:
    """Whole seconds, '7 s' or '2m05s'; '?' for a duration not known yet."""
    if eta is None:
        return "?"
    minutes, seconds = divmod(round(eta), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds} s"


def _progress_bars() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[eta]}"),
        console=console(stderr=True),
        transient=True,
    )
