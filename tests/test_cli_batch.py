"""`soravid batch` as scripts use it: the installed command in a subprocess for a mixed input,
Ctrl-C and resuming; CliRunner for stdin, usage errors and `generate -`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soravid.cli import app
from soravid.video import probe_video
from tests.conftest import default_sigint

runner = CliRunner()
TINY_CLIP = ["-p", "square", "--width", "32", "--height", "32", "--steps", "2", "--device", "cpu"]

MIXED = """\
# a mixed batch
a red circle moving left

{"prompt": "a blue square", "seed": 3, "output": "blue.mp4"}
{"prompt": "a green triangle", "seconds":
{"prompt": "a white circle", "preset": "nope"}
{"prompt": "   "}
a yellow square moving up
"""


def soravid() -> str:
    script = shutil.which("soravid", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("soravid is not installed in this environment (pip install -e .)")
    return script


def batch_command(source: str, out_dir: Path, model: Path, *args: str) -> list[str]:
    model_args = ["--model", str(model), *TINY_CLIP, *args]
    return [soravid(), "batch", source, "-d", str(out_dir), *model_args]


def manifest_rows(out_dir: Path) -> list[dict]:
    return [json.loads(row) for row in (out_dir / "manifest.jsonl").read_text().splitlines()]


def clips(out_dir: Path) -> set[str]:
    return {path.name for path in out_dir.glob("*.mp4")}


def test_a_mixed_file_makes_the_good_items_and_reports_the_bad(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    (tmp_path / "items.txt").write_text(MIXED)
    command = batch_command("items.txt", Path("out"), tiny_model_path, "--seconds", "1", "--json")
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    made = {"a-red-circle-moving-left-s0.mp4", "blue.mp4", "a-yellow-square-moving-up-s0.mp4"}
    assert clips(tmp_path / "out") == made
    assert all(probe_video(tmp_path / "out" / name).frames == 8 for name in made)

    records = [json.loads(line) for line in result.stdout.splitlines()]  # valid JSON Lines
    rows = manifest_rows(tmp_path / "out")
    assert records == rows
    assert [(row["line"], row["status"]) for row in rows] == [
        (2, "ok"),
        (4, "ok"),
        (5, "failed"),
        (6, "failed"),
        (7, "failed"),
        (8, "ok"),
    ]
    assert rows[1]["path"] == str(Path("out") / "blue.mp4") and rows[1]["seed"] == 3
    assert rows[1]["frames"] == 8 and rows[1]["seconds"] == 1.0 and rows[1]["error"] is None

    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: line 5: malformed JSON: Expecting value at column 42",
        "error: line 6: unknown preset 'nope'; valid presets: default, minute, portrait, "
        "square, widescreen",
        "error: line 7: the prompt is empty; describe the video to make",
        "error: 3 of 6 items failed (3 made, 0 skipped, 3 failed); see out/manifest.jsonl",
    ]


def test_ctrl_c_leaves_whole_clips_and_a_rerun_makes_exactly_the_missing(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    # Enough items that the clip being written when the signal lands is not the last, however
    # slowly this test polls on a busy machine.
    colours, ways = ("red", "blue", "green"), ("left", "right", "up", "down")
    prompts = [f"a {colour} circle moving {way}" for colour in colours for way in ways]
    (tmp_path / "items.txt").write_text("\n".join(prompts) + "\n")
    command = batch_command("items.txt", out_dir, tiny_model_path, "--seconds", "1", "-q")

    # A session of its own, signalled as a whole, as Ctrl-C in a terminal does (ffmpeg too).
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    wait_for(lambda: clips(out_dir) - partial(out_dir), process)  # one clip is finished
    wait_for(lambda: partial(out_dir), process, patience=5.0)
    assert partial(out_dir), "no clip was being written when the batch was interrupted"
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "error: interrupted"
    finished = clips(out_dir)
    assert partial(out_dir) == set() and 1 <= len(finished) < len(prompts)
    assert all(probe_video(out_dir / name).frames == 8 for name in finished)
    assert {Path(row["path"]).name for row in manifest_rows(out_dir)} == finished

    rerun = subprocess.run(
        [*command, "--skip-existing", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    records = [json.loads(line) for line in rerun.stdout.splitlines()]
    skipped = {Path(r["path"]).name for r in records if r["status"] == "skipped"}
    made = {Path(r["path"]).name for r in records if r["status"] == "ok"}
    assert skipped == finished and len(made) == len(prompts) - len(finished)
    assert clips(out_dir) == finished | made


def partial(out_dir: Path) -> set[str]:
    return {name for name in clips(out_dir) if ".tmp." in name}


def wait_for(condition, process: subprocess.Popen, patience: float = 60.0) -> None:
    """Poll until `condition()` holds (or `patience` seconds pass); the batch must still run."""
    deadline = time.monotonic() + patience
    while not condition() and time.monotonic() < deadline:
        assert process.poll() is None, "the batch ended before it could be interrupted"
        time.sleep(0.005)


# ---------------------------------------------------------------------------- CliRunner


def test_stdin_items_and_the_clip_paths_on_stdout(tiny_model_path: Path, tmp_path: Path) -> None:
    args = ["batch", "-", "-d", str(tmp_path), "--model", str(tiny_model_path), *TINY_CLIP]
    result = runner.invoke(app, [*args, "--seconds", "0.5", "--seed", "4"], input="a red ball\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{tmp_path / 'a-red-ball-s4.mp4'}\n"
    assert "warning: line 1: the model does not know 'ball'" in result.stderr
    assert "batch done: 1 made, 0 skipped, 0 failed" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.txt"], "error: batch file not found: missing.txt"),
        (["."], "error: batch file is not a file: ."),
        (["items.txt", "--width", "30"], "error: --width must be a multiple of 16"),
        (
            ["items.txt", "--skip-existing", "--overwrite"],
            "error: --skip-existing and --overwrite cannot be",
        ),
        (["items.txt", "--model", "missing.safetensors"], "error: model file not found"),
    ],
)
def test_a_batch_that_cannot_start_is_exit_2(tmp_path, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "items.txt").write_text("a red ball\n")
    result = runner.invoke(app, ["batch", *args, "-d", "out", "--seconds", "1"])
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and result.stdout == ""
    assert not list(tmp_path.rglob("*.mp4"))


def test_generate_reads_the_prompt_from_stdin(tiny_model_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "clip.mp4"
    args = ["generate", "-", "--model", str(tiny_model_path), *TINY_CLIP, "-o", str(output)]
    result = runner.invoke(app, [*args, "--seconds", "0.5"], input="a red\n  circle\n")
    assert result.exit_code == 0, result.output
    assert probe_video(output).metadata["prompt"] == "a red circle"
    empty = runner.invoke(app, ["generate", "-", "-o", str(tmp_path / "x.mp4")], input=" \n")
    assert empty.exit_code == 2 and "the prompt is empty" in empty.stderr
