"""The batch library: reading items, validating each on its own, naming, skipping, the manifest.

Most tests need no model: validation fails before one loads. The last ones make tiny clips with
the random tiny model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soravid.batch import (
    MANIFEST_NAME,
    Batch,
    BatchSettings,
    Entry,
    deal,
    parse_entry,
    read_entries,
)
from soravid.errors import BadInputError
from soravid.video import probe_video

TINY = {"width": 32, "height": 32, "seconds": 1.0, "steps": 2}


def make_batch(out_dir: Path, **settings) -> Batch:
    overrides = {**TINY, "model": "tiny.safetensors", **settings.pop("overrides", {})}
    return Batch(BatchSettings(out_dir, "square", overrides, **settings))


def validate(batch: Batch, line: str):
    return batch.validate(7, parse_entry(Entry(7, line)))


# ---------------------------------------------------------------------------- reading


def test_entries_skip_blank_lines_and_comments_and_keep_line_numbers() -> None:
    lines = ["# prompts\n", "a red ball\n", "\n", "   \n", '  {"prompt": "a blue square"}\n']
    assert list(read_entries(lines, "x")) == [
        Entry(2, "a red ball"),
        Entry(5, '{"prompt": "a blue square"}'),
    ]


def test_an_input_that_is_not_utf8_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_bytes(b"a red ball\n\xff\xfe\x00junk\n")
    with path.open(encoding="utf-8") as lines, pytest.raises(BadInputError, match="not UTF-8"):
        list(read_entries(lines, str(path)))


def test_ranks_are_dealt_the_entries_round_robin_without_overlap() -> None:
    entries = [Entry(line, f"prompt {line}") for line in range(1, 12)]
    dealt = [list(deal(entries, rank, 3)) for rank in range(3)]
    assert all([entry for entry, _ in hand] == entries for hand in dealt)  # each sees all
    shards = [[entry.line for entry, mine in hand if mine] for hand in dealt]
    assert shards[1] == [2, 5, 8, 11]
    assert sorted(line for shard in shards for line in shard) == [e.line for e in entries]
    with pytest.raises(ValueError, match="rank must be from 0 to 2"):
        next(deal(entries, 3, 3))


def test_a_plain_line_is_a_prompt_and_a_brace_line_is_json() -> None:
    assert parse_entry(Entry(1, "a red ball {big}")) == {"prompt": "a red ball {big}"}
    parsed = parse_entry(Entry(1, '{"prompt": "a red ball", "seed": 3}'))
    assert parsed == {"prompt": "a red ball", "seed": 3}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "a red ball", ', "malformed JSON: Expecting property name"),
        ('{"prompt": "a"} trailing', "malformed JSON: Extra data at column 17"),
        ('{"prompt": "a", "sconds": 3, "fps": 4}', "unknown key 'sconds', 'fps'"),
    ],
)
def test_malformed_lines_are_item_errors(line: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        parse_entry(Entry(1, line))


# ---------------------------------------------------------------------------- validating


def test_an_items_keys_override_the_batch_defaults(tmp_path: Path) -> None:
    batch = make_batch(tmp_path, seed=5)
    plain = validate(batch, "A red ball!")
    assert (plain.seed, plain.preset.name, plain.preset.seconds) == (5, "square", 1.0)
    assert (plain.preset.width, plain.preset.steps) == (32, 2)
    assert plain.output == tmp_path / "a-red-ball-s5.mp4"
    item = validate(
        batch, '{"prompt": "a red ball", "seed": 2, "seconds": 3, "preset": "portrait"}'
    )
    assert (item.seed, item.preset.name, item.preset.seconds) == (2, "portrait", 3.0)
    assert item.preset.width == 32  # the flags still apply on top of the item's preset
    assert item.output == tmp_path / "a-red-ball-s2.mp4"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"seed": 3}', "missing key 'prompt'"),
        ('{"prompt": 3}', "'prompt' must be a string, got 3"),
        ('{"prompt": " "}', "the prompt is empty"),
        ('{"prompt": "a", "seed": -1}', "'seed' must be a whole number >= 0, got -1"),
        ('{"prompt": "a", "seed": 1.5}', "'seed' must be a whole number >= 0, got 1.5"),
        ('{"prompt": "a", "seed": true}', "'seed' must be a whole number >= 0, got true"),
        ('{"prompt": "a", "seconds": 0}', "'seconds' must be a number above 0 and at most 600"),
        ('{"prompt": "a", "seconds": 601}', "at most 600, got 601"),
        ('{"prompt": "a", "seconds": "3"}', 'at most 600, got "3"'),
        ('{"prompt": "a", "seconds": NaN}', "at most 600, got NaN"),
        ('{"prompt": "a", "preset": "nope"}', "unknown preset 'nope'; valid presets: default"),
        ('{"prompt": "a", "preset": ""}', "'preset' must be a non-empty string"),
        ('{"prompt": "a", "output": "clip.avi"}', "output must be an .mp4 file"),
        ('{"prompt": "a", "output": "no/such/clip.mp4"}', "output folder does not exist"),
        ('{"prompt": "a", "output": 5}', "'output' must be a non-empty string, got 5"),
    ],
)
def test_bad_items_are_refused_with_a_message(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        validate(make_batch(tmp_path), line)


def test_two_items_with_one_output_the_second_fails(tmp_path: Path) -> None:
    batch = make_batch(tmp_path)
    validate(batch, '{"prompt": "a red ball", "output": "same.mp4"}')
    with pytest.raises(BadInputError, match="same.mp4 is already line 7's output"):
        batch.validate(9, {"prompt": "a blue ball", "output": "same.mp4"})


def test_an_existing_file_is_refused_unless_skipped_or_overwritten(tmp_path: Path) -> None:
    (tmp_path / "a-red-ball-s0.mp4").write_bytes(b"made before")
    with pytest.raises(BadInputError, match="output file exists"):
        validate(make_batch(tmp_path), "a red ball")
    for flag in ("skip_existing", "overwrite"):
        assert validate(make_batch(tmp_path, **{flag: True}), "a red ball").prompt == "a red ball"
    with pytest.raises(BadInputError, match="cannot be combined"):
        make_batch(tmp_path, skip_existing=True, overwrite=True)


def test_a_preset_of_another_model_is_an_item_error(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("width: 32\nheight: 32\nmodel: other.safetensors\n")
    batch = Batch(BatchSettings(tmp_path, "square", {"seconds": 1.0}))
    assert batch.model == "embedded"
    with pytest.raises(BadInputError, match="uses model 'other.safetensors'.*pass --model"):
        validate(batch, json.dumps({"prompt": "a red ball", "preset": str(other)}))
    assert validate(make_batch(tmp_path), json.dumps({"prompt": "a", "preset": str(other)}))


def test_bad_defaults_fail_the_whole_batch_before_the_out_dir_is_made(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="--width must be a multiple of 16"):
        make_batch(tmp_path / "clips", overrides={"width": 30})
    assert not (tmp_path / "clips").exists()


# ---------------------------------------------------------------------------- running


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def item_started(self, item, unknown_words) -> None:
        self.events.append(("started", item.line, tuple(unknown_words)))

    def progress(self, event) -> None:
        self.events.append(("progress", event.phase))

    def item_finished(self, result) -> None:
        self.events.append(("finished", result.line, result.status))


def test_a_run_makes_clips_records_every_item_and_resumes(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    settings = BatchSettings(tmp_path, "square", {**TINY, "model": str(tiny_model_path)})
    lines = ["a red circle\n", '{"prompt": ""}\n', "a blue zebra\n"]
    recorder = Recorder()
    summary = Batch(settings, recorder).run(read_entries(lines, "x"))
    assert dict(summary.counts) == {"ok": 2, "failed": 1}
    started = [event for event in recorder.events if event[0] != "progress"]
    assert started == [
        ("started", 1, ()),
        ("finished", 1, "ok"),
        ("finished", 2, "failed"),
        ("started", 3, ("zebra",)),
        ("finished", 3, "ok"),
    ]
    assert probe_video(tmp_path / "a-blue-zebra-s0.mp4").frames == 8

    resumed = BatchSettings(tmp_path, "square", settings.overrides, skip_existing=True)
    assert dict(Batch(resumed).run(read_entries(lines, "x")).counts) == {
        "skipped": 2,
        "failed": 1,
    }
    rows = [json.loads(row) for row in (tmp_path / MANIFEST_NAME).read_text().splitlines()]
    assert [(row["line"], row["status"]) for row in rows] == [
        (1, "ok"),
        (2, "failed"),
        (3, "ok"),
        (1, "skipped"),
        (2, "failed"),
        (3, "skipped"),
    ]
    assert rows[0]["frames"] == 8 and rows[0]["seconds"] == 1.0 and rows[0]["wall_time"] > 0
    assert rows[3]["path"] == str(tmp_path / "a-red-circle-s0.mp4") and rows[3]["frames"] is None


def test_a_model_that_cannot_load_fails_the_batch(tmp_path: Path) -> None:
    batch = make_batch(tmp_path, overrides={"model": str(tmp_path / "missing.safetensors")})
    with pytest.raises(BadInputError, match="model file not found"):
        batch.run(read_entries(["a red ball"], "x"))
