"""`soravid eval`, `judge`, `contact`: aggregation on rendered clips, end to end on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import pytest
from typer.testing import CliRunner

from soravid.cli import app
from soravid.config import resolve_preset
from soravid.evaluate import eval_captions, evaluate, summarise, write_report
from soravid.pipeline import Pipeline
from soravid.world.captions import parse_caption
from soravid.world.judge import judge_video
from soravid.world.render import save_clip
from soravid.world.spec import WorldAttributes

runner = CliRunner()
BALL = WorldAttributes("black", "red", "circle", "large", "moving right")
BOX = WorldAttributes("white", "blue", "square", "small", "still")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "ball": save_clip(folder / "ball.mp4", BALL, 96, 64, 8, 5, seed=0),
        "box": save_clip(folder / "box.mp4", BOX, 64, 64, 8, 12, seed=0),
    }


def test_summary_counts_windows_and_clips(clips: dict[str, Path], tmp_path: Path) -> None:
    verdicts = [
        judge_video(clips["ball"], BALL),  # one window, passes
        judge_video(clips["ball"], "a large green circle moving right"),  # colour wrong
        judge_video(clips["box"], BOX),  # two windows, both pass
    ]
    report = summarise(verdicts)
    assert report["clips"] == 3
    assert report["accuracy"]["colour"] == 0.75 and report["accuracy"]["motion"] == 1.0
    assert report["every_window"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["window_pass"] == 0.75 and report["drift"] == 0
    first, second = report["over_time"]
    assert (first["start"], first["end"], first["clips"], second["clips"]) == (0, 5, 3, 1)
    assert first["colour"] == pytest.approx(2 / 3, abs=1e-4) and second["all"] == 1.0
    by_value = report["by_value"]
    green, blue = by_value["colour"]["green"], by_value["colour"]["blue"]
    assert green == {"windows": 1, "accuracy": 0.0, "seen_instead": {"red": 1}}
    assert blue == {"windows": 2, "accuracy": 1.0, "seen_instead": {}}
    # the second caption leaves the background out: only the two captions that name one count
    assert {k: v["windows"] for k, v in by_value["background"].items()} == {"black": 1, "white": 2}
    write_report(report, verdicts, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["clips"] == 3
    assert iio.imread(tmp_path / "accuracy_over_time.png").ndim == 3
    sheets = sorted(p.name for p in clips["ball"].parent.glob("*-contact.png"))
    assert sheets == ["ball-contact.png"]  # only the failing clip gets a sheet


def test_eval_captions_are_seeded_paraphrases_of_complete_attributes() -> None:
    captions = list(eval_captions(30, seed=5))
    assert captions == list(eval_captions(30, seed=5))
    assert captions[:10] == list(eval_captions(10, seed=5))  # a larger N extends a smaller one
    assert captions != list(eval_captions(30, seed=6))
    parsed = [parse_caption(c) for c in captions]
    assert all(p.attributes.is_complete and not p.unknown_words for p in parsed)
    canonical = list(eval_captions(30, seed=5, canonical=True))
    assert all(c.startswith("a ") and c.endswith(" background") for c in canonical)


def test_evaluate_end_to_end_with_a_tiny_model(tiny_model_path: Path, tmp_path: Path) -> None:
    preset = resolve_preset("default", seconds=1.0, model=str(tiny_model_path))
    pipeline = Pipeline.load(preset.model, "cpu")
    events = []
    report = evaluate(pipeline, preset, 2, seed=0, folder=tmp_path, on_progress=events.append)
    assert report["clips"] == 2 and report["model"] == pipeline.model_id
    assert set(report["accuracy"]) == {"object", "background", "colour", "shape", "size", "motion"}
    assert all(0 <= share <= 1 for share in report["accuracy"].values())
    assert [e.clip for e in events if e.phase == "judged"] == [1, 2]
    assert any(e.phase == "generate" and e.generation is not None for e in events)
    for index, result in enumerate(report["results"]):
        clip = tmp_path / f"clip-{index:03d}.mp4"
        assert result["path"] == str(clip) and clip.is_file()
        sheet = tmp_path / f"clip-{index:03d}-contact.png"
        assert sheet.is_file() == (not result["passed"])
    assert (tmp_path / "accuracy_over_time.png").is_file()
    assert json.loads((tmp_path / "report.json").read_text())["seed"] == 0


def test_cli_eval_writes_the_report(tiny_model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ["eval", "--n", "1", "--seconds", "1", "--model", str(tiny_model_path)]
    args += ["--continue-from", "0.6"]
    result = runner.invoke(app, [*args, "--out-dir", str(out), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["clips"] == 1 and summary["out_dir"] == str(out)
    assert (out / "clip-000.mp4").is_file()
    assert json.loads((out / "report.json").read_text())["preset"]["continue_from"] == 0.6


def test_cli_eval_rejects_a_bad_preset_before_loading(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--preset", "nope", "--out-dir", str(tmp_path / "e")])
    assert result.exit_code == 2
    assert not (tmp_path / "e").exists()


def test_cli_judge_exit_codes(clips: dict[str, Path]) -> None:
    passed = runner.invoke(app, ["judge", str(clips["ball"]), "a big red ball moving right"])
    assert passed.exit_code == 0, passed.output
    assert "every window matches" in passed.stdout
    failed = runner.invoke(app, ["judge", str(clips["ball"]), "a blue ball", "--json"])
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["windows"][0]["checks"]["colour"] is False
    missing = runner.invoke(app, ["judge", "missing.mp4", "a red ball"])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_cli_judge_warns_about_unknown_words(clips: dict[str, Path]) -> None:
    result = runner.invoke(app, ["judge", str(clips["ball"]), "a red ball zooming right"])
    assert "'zooming'" in result.stderr


def test_cli_contact_writes_a_sheet(clips: dict[str, Path], tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(app, ["contact", str(clips["box"]), "-o", str(sheet), "--tiles", "6"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(sheet)
    image = iio.imread(sheet)
    assert image.shape[1] > 6 * 128  # six enlarged 64-pixel frames in a row
    bad = runner.invoke(app, ["contact", str(clips["box"]), "-o", str(tmp_path / "x.jpg")])
    assert bad.exit_code == 2
