"""torchrun: training with DDP equals one process with the same global batch, resume works
across splits of the data shards, and a batch shared by ranks makes each clip once.

The torchrun tests launch 2 CPU processes (gloo), one launch at a time, each in seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from soravid.batch import MANIFEST_NAME, Batch, BatchSettings, merge_manifest_parts, read_entries
from soravid.cli import app
from soravid.distributed import (
    all_gather_objects,
    all_reduce_sum,
    is_main,
    launch_from_env,
    process_group,
)
from soravid.models.registry import build_model
from soravid.training.checkpoint import load_checkpoint
from soravid.training.recipes import get_recipe
from soravid.training.trainer import train
from soravid.video import probe_video
from soravid.world import CAPTION_VOCABULARY
from tests.test_training import Interrupt, stop_at

TINY_CLIP = ["-p", "square", "--width", "32", "--height", "32", "--steps", "2", "--seconds", "1"]


def torchrun(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc-per-node 2 -m soravid ARGS` (standalone picks a free port)."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = [*launcher, "--nproc-per-node", "2", "-m", "soravid", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=240)


def assert_same_training(ddp: dict, single: dict) -> None:
    """Equal within float rounding, which DDP's all-reduce order changes in the last bits.

    The DiT, text encoder and EMA match closely. The autoencoder has parameters whose gradient
    is only rounding noise (convolution biases right before a GroupNorm): Adam's normalised
    step turns noise into a full step of either sign, so its check is on the whole: the two
    autoencoders differ by a small fraction of how far training moved them.
    """
    for (stage, step, loss), (stage_, step_, loss_) in zip(
        ddp["losses"], single["losses"], strict=True
    ):
        assert (stage, step) == (stage_, step_)
        assert loss == pytest.approx(loss_, rel=1e-4)
    for name, tensor in ddp["ema"].items():
        torch.testing.assert_close(tensor, single["ema"][name], rtol=1e-5, atol=1e-6)
    for name, tensor in ddp["model"].items():
        if not name.startswith("autoencoder."):
            torch.testing.assert_close(tensor, single["model"][name], rtol=1e-5, atol=1e-6)
    torch.manual_seed(get_recipe("tiny").seed)
    initial = build_model("tiny", CAPTION_VOCABULARY).autoencoder.state_dict()
    names = [name for name in initial if not name.startswith("latent_")]
    weights = [
        torch.cat([state[f"autoencoder.{name}"].flatten() for name in names])
        for state in (ddp["model"], single["model"])
    ]
    moved = (weights[1] - torch.cat([initial[name].flatten() for name in names])).abs().mean()
    assert (weights[0] - weights[1]).abs().mean() < 0.02 * moved


# ---------------------------------------------------------------------------- one process


def test_without_torchrun_there_is_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with process_group() as launch:
        assert (launch.rank, launch.world_size, launch.distributed) == (0, 1, False)
        assert is_main()
        assert all_gather_objects({"a": 1}) == [{"a": 1}]
        assert all_reduce_sum([1.0, 2.0]) == [1.0, 2.0]
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launch_from_env().distributed and launch_from_env().local_rank == 1


def test_a_rank_claims_the_outputs_of_entries_another_rank_makes(tmp_path: Path) -> None:
    settings = BatchSettings(tmp_path, "square", {"width": 32, "height": 32, "seconds": 1.0})
    lines = ['{"prompt": "a red ball", "output": "same.mp4"}', '{"prompt": "a", "seed": -1}']
    lines.append("a red ball")
    lines.append('{"prompt": "a green ball", "output": "same.mp4"}')
    summary = Batch(settings, rank=1, ranks=2).run(read_entries(lines, "x"))  # lines 2 and 4
    assert dict(summary.counts) == {"failed": 2}  # no clip made: no model loaded
    rows = [json.loads(row) for row in (tmp_path / "manifest.rank1.jsonl").read_text().splitlines()]
    assert [row["line"] for row in rows] == [2, 4]
    assert "same.mp4 is already line 1's output" in rows[1]["error"]
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_rank_manifests_merge_in_input_order(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text('{"line": 9, "status": "ok"}\n')
    (tmp_path / "manifest.rank0.jsonl").write_text('{"line": 1}\n{"line": 3}\n')
    (tmp_path / "manifest.rank1.jsonl").write_text('{"line": 2}\n')
    assert merge_manifest_parts(tmp_path) == 3
    rows = [json.loads(row) for row in (tmp_path / MANIFEST_NAME).read_text().splitlines()]
    assert [row["line"] for row in rows] == [9, 1, 2, 3]
    assert [path.name for path in tmp_path.iterdir()] == [MANIFEST_NAME]


# ---------------------------------------------------------------------------- torchrun


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny recipe trained by 2 ranks, one micro-batch each."""
    run = tmp_path_factory.mktemp("ddp") / "run"
    result = torchrun("train", "--recipe", "tiny", "--out", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    return run


def test_ddp_on_two_ranks_equals_one_process_accumulating_two(
    ddp_run: Path, tmp_path: Path
) -> None:
    train(get_recipe("tiny"), tmp_path, accumulate=2)
    ddp, single = load_checkpoint(ddp_run), load_checkpoint(tmp_path)
    assert [shard["index"] for shard in ddp["shards"]] == [0, 1]
    for shard, shard_ in zip(ddp["shards"], single["shards"], strict=True):
        assert shard["clips"] == shard_["clips"] and torch.equal(shard["noise"], shard_["noise"])
    assert_same_training(ddp, single)
    assert (ddp_run / "model.safetensors").is_file() and (ddp_run / "losses.png").is_file()


def test_torchrun_resumes_a_run_one_process_began(ddp_run: Path, tmp_path: Path) -> None:
    with pytest.raises(Interrupt):
        train(get_recipe("tiny"), tmp_path, on_progress=stop_at("dit", 2), accumulate=2)
    result = torchrun("train", "--recipe", "tiny", "--out", str(tmp_path), "--resume", "--quiet")
    assert result.returncode == 0, result.stderr
    assert_same_training(load_checkpoint(ddp_run), load_checkpoint(tmp_path))


def test_resume_refuses_another_shard_count(ddp_run: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--recipe", "tiny", "--out", str(ddp_run)])
    assert result.exit_code == 2
    resume = ["train", "--recipe", "tiny", "--out", str(ddp_run), "--resume"]
    refused = CliRunner().invoke(app, [*resume, "--accumulate", "3"])
    assert refused.exit_code == 2
    assert "2 data shards" in refused.output and "1 x 3" in refused.output


def test_a_batch_under_torchrun_makes_each_clip_once(tiny_model_path: Path, tmp_path: Path) -> None:
    items = [f"a {colour} circle" for colour in ("red", "green", "blue", "white", "yellow")]
    items.append('{"prompt": "a red square", "output": "a-red-circle-s0.mp4"}')  # rank 1's
    (tmp_path / "items.txt").write_text("\n".join(items) + "\n")
    model = ["--model", str(tiny_model_path), *TINY_CLIP]
    result = torchrun("batch", "items.txt", "-d", "out", *model, "--json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # the duplicate output failed
    assert "1 of 6 items failed" in result.stderr
    out = tmp_path / "out"
    rows = [json.loads(row) for row in (out / MANIFEST_NAME).read_text().splitlines()]
    assert [(row["line"], row["status"]) for row in rows] == [
        *((n, "ok") for n in range(1, 6)),
        (6, "failed"),
    ]
    made = sorted(path.name for path in out.glob("*.mp4"))
    assert made == sorted(Path(row["path"]).name for row in rows[:5])
    assert all(probe_video(out / name).frames == 8 for name in made)
    assert sorted(path.name for path in out.iterdir()) == sorted([*made, MANIFEST_NAME])
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted(record["line"] for record in printed) == list(range(1, 7))
