"""`soravid eval`: generate clips for seeded random captions, judge each, and report.

Clip i's caption comes from a generator seeded by (seed, i), its noise from seed + i, so an
evaluation is repeatable and a larger N extends a smaller one. Into the output folder go the
clips, `report.json`, `accuracy_over_time.png` (accuracy per 5-second window) and a contact
sheet `clip-NNN-contact.png` for every clip that fails a window.

Accuracy of a check is the share of all windows, over all clips, where it holds; "every window"
is the share of clips that pass all their windows; drift is averaged over clips.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from soravid.charts import line_chart
from soravid.world.captions import random_caption
from soravid.world.contact import contact_sheet, write_png
from soravid.world.judge import CHECKS, Verdict, WindowVerdict, judge_video
from soravid.world.spec import sample_attributes

if TYPE_CHECKING:
    from soravid.config import ResolvedPreset
    from soravid.pipeline import Pipeline, ProgressEvent


@dataclass(frozen=True)
class EvalProgress:
    """Where an evaluation stands: clip (1-based) of clips, in phase "generate" (with the
    pipeline's event) or "judged" (with the verdict)."""

    clip: int
    clips: int
    caption: str
    phase: str
    generation: ProgressEvent | None = None
    verdict: Verdict | None = None


EvalCallback = Callable[[EvalProgress], None]


def eval_captions(count: int, seed: int, canonical: bool = False) -> Iterator[str]:
    """The evaluation's captions: complete random attributes, paraphrased unless canonical."""
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        yield random_caption(sample_attributes(rng), rng, paraphrase=not canonical)


def clip_path(folder: Path, index: int) -> Path:
    return folder / f"clip-{index:03d}.mp4"


def evaluate(
    pipeline: Pipeline,
    preset: ResolvedPreset,
    count: int,
    seed: int,
    folder: Path,
    canonical: bool = False,
    on_progress: EvalCallback | None = None,
) -> dict:
    """Generate and judge `count` clips into `folder`; write the report files; return the report."""
    from soravid.pipeline import GenerationRequest

    pipeline.check_canvas(preset)
    folder.mkdir(parents=True, exist_ok=True)
    notify = on_progress or (lambda _: None)
    start, verdicts, unknown = time.perf_counter(), [], set()
    for index, caption in enumerate(eval_captions(count, seed, canonical)):
        position = (index + 1, count, caption)
        unknown.update(pipeline.unknown_words(caption))
        request = GenerationRequest(caption, seed + index, preset)
        relay = partial(_relay_generation, notify, position)
        result = pipeline.generate(request, clip_path(folder, index), True, relay)
        verdicts.append(judge_video(result.path, caption))
        notify(EvalProgress(*position, "judged", verdict=verdicts[-1]))
    report = summarise(verdicts)
    report.update(
        model=pipeline.model_id,
        preset=asdict(preset),
        seed=seed,
        canonical=canonical,
        model_unknown_words=sorted(unknown),
        wall_time=round(time.perf_counter() - start, 2),
    )
    write_report(report, verdicts, folder)
    return report


def _relay_generation(
    notify: EvalCallback, position: tuple[int, int, str], event: ProgressEvent
) -> None:
    notify(EvalProgress(*position, "generate", generation=event))


def summarise(verdicts: list[Verdict]) -> dict:
    """Accuracy per check, share passing every window, drift, and accuracy per window index."""
    windows = [w for v in verdicts for w in v.windows]
    accuracy = {name: _share(w.checks[name] for w in windows) for name in CHECKS}
    return {
        "clips": len(verdicts),
        "accuracy": accuracy,
        "every_window": _share(v.passed for v in verdicts),
        "window_pass": _share(w.passed for w in windows),
        "drift": round(float(np.mean([v.drift for v in verdicts])), 4) if verdicts else 0.0,
        "over_time": accuracy_over_time(verdicts),
        "by_value": accuracy_by_value(verdicts),
        "results": [_clip_record(v) for v in verdicts],
    }


def accuracy_over_time(verdicts: list[Verdict]) -> list[dict]:
    """For each window position: its span, how many clips reach it, and accuracy per check."""
    rows = []
    for index in range(max((len(v.windows) for v in verdicts), default=0)):
        present = [v.windows[index] for v in verdicts if len(v.windows) > index]
        accuracy = {name: _share(w.checks[name] for w in present) for name in CHECKS}
        accuracy["all"] = _share(w.passed for w in present)
        span = (present[0].start, present[0].end)
        rows.append({"start": span[0], "end": span[1], "clips": len(present), **accuracy})
    return rows


def accuracy_by_value(verdicts: list[Verdict]) -> dict[str, dict[str, dict]]:
    """Per attribute, per value a caption asked for: its windows, the check's accuracy and
    what the judge saw instead when it failed ("none": nothing recognised), most seen first.
    Which shapes or sizes fail, and as what, is where a model's weakness shows."""
    table: dict[str, dict[str, dict]] = {}
    for name in CHECKS[1:]:  # "object" has no asked-for value
        windows: dict[str, list[WindowVerdict]] = {}
        for verdict in verdicts:
            asked = getattr(verdict.expected, name)
            if asked is not None:  # left out of the caption: any value passes
                windows.setdefault(asked, []).extend(verdict.windows)
        table[name] = {
            asked: {
                "windows": len(seen),
                "accuracy": _share(w.checks[name] for w in seen),
                "seen_instead": dict(
                    Counter(
                        w.measured[name] or "none" for w in seen if not w.checks[name]
                    ).most_common()
                ),
            }
            for asked, seen in sorted(windows.items())
        }
    return table


def _share(flags: Iterator[bool] | list[bool]) -> float:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def _clip_record(verdict: Verdict) -> dict:
    record = verdict.to_dict()
    kept = {
        key: record[key] for key in ("path", "prompt", "caption", "passed", "worst_window", "drift")
    }
    kept["windows"] = [{"checks": w.checks, "measured": w.measured} for w in verdict.windows]
    return kept


def write_report(report: dict, verdicts: list[Verdict], folder: Path) -> None:
    """report.json, accuracy_over_time.png and a contact sheet per failing clip."""
    import json

    for verdict in verdicts:
        if not verdict.passed:
            sheet = Path(verdict.path).with_name(f"{Path(verdict.path).stem}-contact.png")
            write_png(contact_sheet(verdict.path), sheet)
    rows = report["over_time"]
    if rows:
        # Each window is a flat step over its span, so a single window still draws a line.
        times = [t for r in rows for t in (r["start"], r["end"])]
        series = {
            name: (times, [100 * r[name] for r in rows for _ in (0, 1)])
            for name in ("all", *CHECKS)
        }
        title = f"Accuracy per 5-second window, {report['clips']} clips"
        line_chart(folder / "accuracy_over_time.png", series, title, "time (s)", "accuracy (%)")
    (folder / "report.json").write_text(json.dumps(report, indent=2))
