"""Batches: many clips from one loaded model, described one per input line.

An input line is a plain prompt, or a JSON object when it starts with `{`: {"prompt": ...,
"seconds": ..., "seed": ..., "preset": ..., "output": ...}, every key but prompt optional; the
two kinds may mix, and blank lines and `#` comments are skipped. The batch settings give every
item its defaults (preset, flag overrides, seed); an item's own keys override them.

Each item stands alone: a bad one fails with a message naming its line, and the batch goes on.
Outputs get deterministic names under the out-dir (prompt slug + seed, or the item's output),
and writes are atomic, so a finished file under its final name means done: with skip_existing
a rerun makes exactly the clips a crash or Ctrl-C left unmade. The manifest
`<out-dir>/manifest.jsonl` is append-only: one row per item per run. The library never prints:
an observer hears of each item and of generation progress.

Several processes (torchrun ranks) can share a batch: entries are dealt round robin, each rank
makes its own and claims the others' outputs too, so two entries sharing an output fail the
same way as in one process and no two ranks write one file. Each rank appends its rows to its
own `manifest.rank<r>.jsonl`, which rank 0 merges into the manifest in input order once every
rank is done: appends from several machines to one file on a network filesystem can
interleave, separate files cannot. Parts that an interrupted run left are merged by the next
run to finish.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from soravid.config import MAX_SECONDS, ResolvedPreset, resolve_preset
from soravid.errors import BadInputError, SoravidError
from soravid.naming import default_output_path
from soravid.video import check_output_path

if TYPE_CHECKING:
    from soravid.pipeline import Pipeline, ProgressEvent

ITEM_KEYS = ("prompt", "seconds", "seed", "preset", "output")
MANIFEST_NAME = "manifest.jsonl"
MANIFEST_PART = "manifest.rank{}.jsonl"  # one rank's rows, while ranks share a batch


# ---------------------------------------------------------------------------- reading items


@dataclass(frozen=True)
class Entry:
    """One input line that is neither blank nor a comment, not yet validated."""

    line: int  # 1-based line number in the input
    text: str


def read_entries(lines: Iterable[str], source: str) -> Iterator[Entry]:
    """The entries of an input, streamed line by line (`source` names it in errors)."""
    numbered = enumerate(lines, start=1)
    while True:
        try:
            number, raw = next(numbered)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise BadInputError(f"{source} is not UTF-8 text") from None
        text = raw.strip()
        if text and not text.startswith("#"):
            yield Entry(number, text)


def deal(entries: Iterable[Entry], rank: int, ranks: int) -> Iterator[tuple[Entry, bool]]:
    """Each entry, and whether rank `rank` of `ranks` makes it: every ranks-th entry, starting
    at its own (round robin)."""
    if not 0 <= rank < ranks:
        raise ValueError(f"rank must be from 0 to {ranks - 1}, got {rank}")
    for index, entry in enumerate(entries):
        yield entry, index % ranks == rank


def parse_entry(entry: Entry) -> dict[str, Any]:
    """The entry's keys: {"prompt": text} for a plain line, the object for a JSON line."""
    if not entry.text.startswith("{"):
        return {"prompt": entry.text}
    try:
        keys = json.loads(entry.text)
    except json.JSONDecodeError as error:
        raise BadInputError(f"malformed JSON: {error.msg} at column {error.colno}") from None
    if unknown := [key for key in keys if key not in ITEM_KEYS]:
        names = ", ".join(f"'{key}'" for key in unknown)
        raise BadInputError(f"unknown key {names}; an item may have {', '.join(ITEM_KEYS)}")
    return keys


# ---------------------------------------------------------------------------- validating items


@dataclass(frozen=True)
class BatchSettings:
    """What every item starts from."""

    out_dir: Path
    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)  # resolve_preset's, from flags
    seed: int = 0
    skip_existing: bool = False
    overwrite: bool = False
    device: str = "auto"


@dataclass(frozen=True)
class BatchItem:
    """A validated item: everything needed to make its clip."""

    line: int
    prompt: str
    seed: int
    preset: ResolvedPreset
    output: Path


def _prompt(keys: dict[str, Any]) -> str:
    if "prompt" not in keys:
        raise BadInputError("missing key 'prompt'")
    prompt = keys["prompt"]
    if not isinstance(prompt, str):
        raise BadInputError(f"'prompt' must be a string, got {json.dumps(prompt)}")
    if not prompt.strip():
        raise BadInputError("the prompt is empty; describe the video to make")
    return prompt.strip()


def _seed(keys: dict[str, Any], default: int) -> int:
    seed = keys.get("seed", default)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BadInputError(f"'seed' must be a whole number >= 0, got {json.dumps(seed)}")
    return seed


def _seconds(keys: dict[str, Any]) -> float | None:
    if "seconds" not in keys:
        return None
    seconds = keys["seconds"]
    number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if not (number and math.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        raise BadInputError(
            f"'seconds' must be a number above 0 and at most {MAX_SECONDS:g}, "
            f"got {json.dumps(seconds)}"
        )
    return float(seconds)


def _string(keys: dict[str, Any], key: str, default: str | None) -> str | None:
    value = keys.get(key, default)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise BadInputError(f"'{key}' must be a non-empty string, got {json.dumps(value)}")
    return value


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ItemResult:
    """What became of one item: a manifest row, and a --json line."""

    line: int
    status: str  # "ok" (made), "skipped" (its file was there), "failed"
    path: str | None = None
    prompt: str | None = None
    seed: int | None = None
    seconds: float | None = None
    frames: int | None = None
    wall_time: float | None = None
    error: str | None = None

    def record(self) -> dict[str, Any]:
        return asdict(self)


def failed(line: int, error: SoravidError, item: BatchItem | None, keys: dict) -> ItemResult:
    """A failed item's row, with as much of the item as was known."""
    if item is not None:
        path, prompt, seed = str(item.output), item.prompt, item.seed
    else:
        prompt = keys.get("prompt") if isinstance(keys.get("prompt"), str) else None
        path, seed = None, None
    return ItemResult(line, "failed", path, prompt, seed, error=str(error))


def append_manifest(path: Path, result: ItemResult) -> None:
    """One JSON line, written in one call so a crash cannot leave half a row."""
    _append(path, json.dumps(result.record()) + "\n")


def _append(path: Path, text: str) -> None:
    """One write() on an O_APPEND descriptor: lands whole at the end of the file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, text.encode("utf-8"))
    finally:
        os.close(descriptor)


def merge_manifest_parts(out_dir: Path) -> int:
    """Append the rows of every rank's part to the manifest, in input order, and remove the
    parts; returns the number of rows. Only when no rank is writing (the batch is over)."""
    parts = sorted(out_dir.glob(MANIFEST_PART.format("*")))
    rows = [row for part in parts for row in part.read_text(encoding="utf-8").splitlines()]
    rows.sort(key=lambda row: json.loads(row)["line"])  # stable: a line's rows keep run order
    if rows:
        _append(out_dir / MANIFEST_NAME, "".join(row + "\n" for row in rows))
    for part in parts:
        part.unlink()
    return len(rows)


@dataclass(frozen=True)
class BatchSummary:
    counts: Counter  # status -> items

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def over_all_ranks(self) -> BatchSummary:
        """The counts summed over every torchrun rank (this process's alone without torchrun)."""
        from soravid.distributed import all_reduce_sum

        statuses = ("ok", "skipped", "failed")
        sums = all_reduce_sum([float(self.counts[status]) for status in statuses])
        return BatchSummary(Counter({s: int(n) for s, n in zip(statuses, sums, strict=True) if n}))


class BatchObserver(Protocol):
    """Hears what a batch does; the CLI renders it. A subclass may leave any method as is."""

    def item_started(self, item: BatchItem, unknown_words: list[str]) -> None:
        """Generation of `item` begins (its model is loaded)."""

    def progress(self, event: ProgressEvent) -> None:
        """Generation progress of the current item."""

    def item_finished(self, result: ItemResult) -> None:
        """An item is done, whatever its status (its manifest row is written)."""


class _Unobserved(BatchObserver):
    pass


# ---------------------------------------------------------------------------- running


class Batch:
    """Runs items with one model, loaded on the first item that needs it; with ranks > 1, the
    share of rank `rank`."""

    def __init__(
        self,
        settings: BatchSettings,
        observer: BatchObserver | None = None,
        rank: int = 0,
        ranks: int = 1,
    ) -> None:
        if settings.skip_existing and settings.overwrite:
            raise BadInputError("--skip-existing and --overwrite cannot be combined")
        self.settings = settings
        self.observer = observer or _Unobserved()
        # Bad defaults (flags) fail the whole batch before any item; they also pick the model.
        self.model = resolve_preset(settings.preset, **settings.overrides).model
        self.manifest = _out_dir(settings.out_dir) / MANIFEST_NAME
        self.rank, self.ranks = rank, ranks
        self.rows = (
            self.manifest if ranks == 1 else self.manifest.with_name(MANIFEST_PART.format(rank))
        )
        self._pipeline: Pipeline | None = None
        self._claimed: dict[str, int] = {}  # output path -> line that claimed it

    def run(self, entries: Iterable[Entry]) -> BatchSummary:
        counts: Counter = Counter()
        for entry, mine in deal(entries, self.rank, self.ranks):
            if not mine:
                self.claim_only(entry)
                continue
            result = self.run_entry(entry)
            append_manifest(self.rows, result)
            self.observer.item_finished(result)
            counts[result.status] += 1
        return BatchSummary(counts)

    def run_entry(self, entry: Entry) -> ItemResult:
        """Validate, then skip or make one item. A model that cannot load fails the batch."""
        keys: dict[str, Any] = {}
        try:
            keys = parse_entry(entry)
            item = self.validate(entry.line, keys)
        except SoravidError as error:
            return failed(entry.line, error, None, keys)
        if self.settings.skip_existing and item.output.is_file():
            return ItemResult(item.line, "skipped", str(item.output), item.prompt, item.seed)
        pipeline = self.pipeline()
        try:
            return self._generate(pipeline, item)
        except SoravidError as error:
            return failed(entry.line, error, item, keys)

    def claim_only(self, entry: Entry) -> None:
        """Another rank makes this entry: claim its output all the same, so that a later entry
        sharing it fails here as it would in one process. Its own rank reports its errors."""
        try:
            self.validate(entry.line, parse_entry(entry), check_existing=False)
        except SoravidError:
            pass

    def validate(self, line: int, keys: dict[str, Any], check_existing: bool = True) -> BatchItem:
        """An item from its keys and the settings, its output claimed for this run."""
        settings = self.settings
        prompt, seed, seconds = _prompt(keys), _seed(keys, settings.seed), _seconds(keys)
        preset_name = _string(keys, "preset", settings.preset)
        overrides = settings.overrides | ({} if seconds is None else {"seconds": seconds})
        preset = resolve_preset(preset_name, **overrides)
        if preset.model != self.model:
            raise BadInputError(
                f"preset '{preset_name}' uses model '{preset.model}', but a batch runs one "
                f"model ('{self.model}'); pass --model to use one for every item"
            )
        name = _string(keys, "output", None) or default_output_path(prompt, seed)
        output = settings.out_dir / name
        self._claim(output, line, check_existing)
        return BatchItem(line, prompt, seed, preset, output)

    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            from soravid.pipeline import Pipeline

            self._pipeline = Pipeline.load(self.model, self.settings.device)
        return self._pipeline

    def _claim(self, output: Path, line: int, check_existing: bool) -> None:
        """Two items never share a file; an existing file is skipped or refused, never replaced
        unless overwrite is set. The claim comes first, so it holds whatever the file system
        says (other ranks claim without looking: the file may be written meanwhile)."""
        key = os.path.abspath(output)
        if key in self._claimed:
            raise BadInputError(f"output {output} is already line {self._claimed[key]}'s output")
        self._claimed[key] = line
        if check_existing and not (self.settings.skip_existing and output.is_file()):
            check_output_path(output, self.settings.overwrite)

    def _generate(self, pipeline: Pipeline, item: BatchItem) -> ItemResult:
        from soravid.pipeline import GenerationRequest

        self.observer.item_started(item, pipeline.unknown_words(item.prompt))
        request = GenerationRequest(prompt=item.prompt, seed=item.seed, preset=item.preset)
        result = pipeline.generate(
            request, item.output, self.settings.overwrite, on_progress=self.observer.progress
        )
        return ItemResult(
            item.line,
            "ok",
            str(result.path),
            item.prompt,
            item.seed,
            result.seconds,
            result.frames,
            round(result.wall_time, 3),
        )


def _out_dir(path: Path) -> Path:
    """The out-dir, made if missing."""
    if path.exists() and not path.is_dir():
        raise BadInputError(f"--out-dir is not a folder: {path}")
    path.mkdir(parents=True, exist_ok=True)
    return path
