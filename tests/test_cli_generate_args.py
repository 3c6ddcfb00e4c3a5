"""`soravid generate` argument handling: every bad input exits 2 with one line, before any
model is loaded and without writing a file; errors map to exit codes in one place; Ctrl-C
during a write exits 130 and leaves nothing behind."""

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from soravid.cli import app
from soravid.cli.app import SoravidGroup
from soravid.cli.common import ProgressView, default_output_path, is_animated, slugify
from soravid.errors import BadInputError, GenerationError
from tests.conftest import default_sigint

runner = CliRunner()

PRESET_FILES = {
    "unknown_key.yaml": "seconds: 2\nwidht: 64\n",
    "wrong_type.yaml": "fps: eight\n",
    "malformed.yaml": "fps: [8\n",
    "too_long.yaml": "seconds: 601\nwidth: 64\nheight: 64\n",
}

BAD_INPUTS = [
    (["--preset", "cinema"], "unknown preset 'cinema'; valid presets: default, minute, portrait"),
    (["--preset", "missing.yaml"], "preset file not found: missing.yaml"),
    (["--preset", "unknown_key.yaml"], "unknown_key.yaml: unknown key 'widht'"),
    (["--preset", "wrong_type.yaml"], "wrong_type.yaml: bad value for key 'fps'"),
    (["--preset", "malformed.yaml"], "malformed.yaml: malformed YAML at line"),
    (["--preset", "too_long.yaml"], "too_long.yaml: seconds must be above 0 and at most 600"),
    (["--seconds", "0"], "--seconds must be above 0"),
    (["--seconds", "-2"], "--seconds must be above 0"),
    (["--seconds", "nan"], "--seconds must be above 0"),
    (["--seconds", "inf"], "--seconds must be above 0"),
    (["--seconds", "601"], "--seconds must be above 0 and at most 600"),
    (["--fps", "0"], "--fps must be from 1 to 60"),
    (["--fps", "120"], "--fps must be from 1 to 60"),
    (["--width", "100"], "--width must be a multiple of 16"),
    (["--height", "2048"], "--height must be a multiple of 16 from 32 to 1024"),
    (["--aspect", "wide"], "--aspect must look like W:H"),
    (["--aspect", "16:9", "--width", "64"], "--aspect cannot be combined"),
    (["--steps", "0"], "--steps must be from 1"),
    (["--guidance", "nan"], "--guidance must be a finite number"),
    (["--continue-from", "0"], "--continue-from must be above 0 and at most 1"),
    (["--continue-from", "1.5"], "--continue-from must be above 0 and at most 1"),
    (["-o", "clip.mkv"], "output must be an .mp4 file"),
    (["-o", "no/such/folder/clip.mp4"], "output folder does not exist: no/such/folder"),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder holding the preset files above."""
    monkeypatch.chdir(tmp_path)
    for name, text in PRESET_FILES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to load a model fails the test: bad input must be caught before that."""

    class Pipeline:
        @classmethod
        def load(cls, *args: object, **kwargs: object) -> None:
            raise AssertionError("the model was loaded for bad input")

    stub = types.ModuleType("soravid.pipeline")
    stub.Pipeline = Pipeline
    stub.GenerationRequest = None
    monkeypatch.setitem(sys.modules, "soravid.pipeline", stub)


def files_in(folder: Path) -> set[str]:
    return set(os.listdir(folder)) - set(PRESET_FILES)


def assert_one_line_error(stderr: str, expected: str) -> None:
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert expected in stderr


@pytest.mark.parametrize(("args", "expected"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(workdir, no_model, args, expected):
    result = runner.invoke(app, ["generate", "a red ball", *args])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, expected)
    assert result.stdout == ""
    assert files_in(workdir) == set()


def test_an_empty_prompt_is_bad_input(workdir, no_model):
    result = runner.invoke(app, ["generate", "  "])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "the prompt is empty")


def test_an_existing_output_is_not_replaced(workdir, no_model):
    existing = workdir / default_output_path("a red ball", 3)
    existing.write_bytes(b"precious")
    result = runner.invoke(app, ["generate", "a red ball", "--seed", "3"])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "output file exists: a-red-ball-s3.mp4")
    assert existing.read_bytes() == b"precious"


@pytest.mark.parametrize(
    "args",
    [["--fps", "abc"], ["--device", "tpu"], ["--seed", "-1"], ["--bogus"], []],
)
def test_usage_errors_exit_2(workdir, no_model, args):
    prompt = ["a red ball"] if args else []
    result = runner.invoke(app, ["generate", *prompt, *args])
    assert result.exit_code == 2
    assert files_in(workdir) == set()


@pytest.mark.parametrize(
    ("prompt", "slug"),
    [
        (
            "a big red ball bouncing on a black background",
            "a-big-red-ball-bouncing-on-a-black-background",
        ),
        ("A Big, RED ball!!", "a-big-red-ball"),
        ("   ", "video"),
        ("été ?", "t"),
        ("word " * 30, "-".join(["word"] * 12)),
    ],
)
def test_output_names_are_slugs_of_the_prompt(prompt, slug):
    assert slugify(prompt) == slug
    assert len(slugify(prompt)) <= 60
    assert default_output_path(prompt, 7) == Path(f"{slug}-s7.mp4")


# ---------------------------------------------------------------------------- exit codes


def make_failing_app(error: BaseException) -> typer.Typer:
    failing = typer.Typer(cls=SoravidGroup)

    @failing.command()
    def fail() -> None:
        raise error

    @failing.command()
    def other() -> None:
        """A second command, so `fail` is a subcommand as in soravid."""

    return failing


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (GenerationError("decoder ran out of memory"), 1, "error: decoder ran out of memory\n"),
        (BadInputError("bad flag"), 2, "error: bad flag\n"),
        (KeyboardInterrupt(), 130, "error: interrupted\n"),
    ],
)
def test_errors_map_to_exit_codes_in_one_place(error, code, line):
    result = runner.invoke(make_failing_app(error), ["fail"])
    assert result.exit_code == code
    assert result.stderr == line


# ---------------------------------------------------------------------------- progress


def event(phase: str, chunk: int, step: int) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        phase=phase, chunk=chunk, chunks=2, step=step, steps=3, elapsed=1.25, eta=65.0
    )


def test_progress_is_plain_lines_off_a_terminal(capsys):
    with ProgressView() as view:
        assert view.mode == "lines"
        for chunk in (1, 2):
            for step in (1, 2, 3):
                view(event("denoise", chunk, step))
            view(event("decode", chunk, 3))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "chunk 1 of 2: denoise step 3 of 3, 1.2 s elapsed, ETA 1m05s"
    assert [line.split(",")[0] for line in lines] == [
        "chunk 1 of 2: denoise step 3 of 3",
        "chunk 1 of 2: decode step 3 of 3",
        "chunk 2 of 2: denoise step 3 of 3",
        "chunk 2 of 2: decode step 3 of 3",
    ]


def test_quiet_progress_prints_nothing(capsys):
    with ProgressView(quiet=True) as view:
        view(event("denoise", 1, 3))
    assert capsys.readouterr() == ("", "")


class FakeTerminal:
    def isatty(self) -> bool:
        return True


def test_animation_needs_a_terminal_and_no_NO_COLOR(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert is_animated(FakeTerminal())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not is_animated(FakeTerminal())


# ---------------------------------------------------------------------------- Ctrl-C

# Runs the real `soravid generate` on the tiny model, slowed down so there is time to press
# Ctrl-C while the MP4 is being written.
SLOW_SORAVID = """
import sys, time
from soravid import pipeline
from soravid.cli import main

frames = pipeline.Pipeline.frames

def slow_frames(self, request, on_progress=None):
    for frame in frames(self, request, on_progress):
        time.sleep(0.05)
        yield frame

pipeline.Pipeline.frames = slow_frames
sys.argv[0] = "soravid"
main()
"""


def test_ctrl_c_while_writing_exits_130_and_leaves_nothing(tmp_path, tiny_model_path):
    command = [sys.executable, "-c", SLOW_SORAVID, "generate", "a red ball", "-o", "clip.mp4"]
    command += ["--model", str(tiny_model_path), "--preset", "square", "--seconds", "60"]
    command += ["--width", "32", "--height", "32", "--device", "cpu"]
    process = subprocess.Popen(
        command, cwd=tmp_path, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("*.tmp.mp4")) and process.poll() is None:
            assert time.monotonic() < deadline, "the temporary MP4 never appeared"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "error: interrupted" in stderr
    assert os.listdir(tmp_path) == []
