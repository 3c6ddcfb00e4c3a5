"""Turn a finished training run into a model file: EMA weights, sampling settings, provenance."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from soravid.models.registry import SoravidModel, build_model
from soravid.training.checkpoint import decode_json, load_checkpoint
from soravid.training.recipes import TrainRecipe
from soravid.weights import TRAINING_KEY, save_model
from soravid.world import CAPTION_VOCABULARY

# float16 halves the file (the shipped model must stay small); loading casts back to float32.
EXPORT_DTYPE = torch.float16


def export_model(run_dir: Path, output: Path, ema: bool = True) -> SoravidModel:
    """Write the run's model (EMA weights of the networks its last stage trained, or with
    ema=False or after a stage without EMA, such as a decoder stage with ema_decay 0, the last
    step's own) to `output`."""
    saved = load_checkpoint(run_dir)
    if saved["stage"] != "done":
        raise ValueError(f"{run_dir}: training is not finished (stage {saved['stage']})")
    recipe = TrainRecipe.from_dict(decode_json(saved["recipe"]))
    model = build_model(recipe.model, CAPTION_VOCABULARY)
    model.load_state_dict(saved["model"])
    if ema:
        for name, tensor in (saved["ema"] or {}).items():
            model.get_parameter(name).data.copy_(tensor)
    model.config.schedule_shift = recipe.schedule_shift
    model.config.context_time = recipe.context_time
    provenance = training_summary(recipe, saved)
    save_model(model, Path(output), {TRAINING_KEY: json.dumps(provenance)}, dtype=EXPORT_DTYPE)
    return model


def training_summary(recipe: TrainRecipe, saved: dict) -> dict:
    """The recipe, the seed, the training time and each stage's final loss (mean of its last
    100 steps): what README and `soravid info` report about the shipped weights. A run that
    started from an exported model (`soravid train --from`) adds that model's time and losses
    to its own, and names it."""
    seconds, losses = saved["seconds"], final_losses(saved["losses"])
    summary: dict = {"recipe": recipe.to_dict(), "seed": recipe.seed}
    started_from = saved.get("started_from")
    if started_from is not None:
        seconds += started_from["train_seconds"]
        losses = started_from["final_losses"] | losses
        summary["started_from"] = started_from["model"]
    return summary | {"train_seconds": round(seconds, 1), "final_losses": losses}


def final_losses(losses: list[list], last: int = 100) -> dict[str, float]:
    by_stage: dict[str, list[float]] = {}
    for stage, _, loss in losses:
        by_stage.setdefault(stage, []).append(loss)
    return {stage: round(sum(v[-last:]) / len(v[-last:]), 5) for stage, v in by_stage.items()}


def loss_curves(losses: list[list], path: Path, smoothing: int = 50) -> Path:
    """Each stage's loss per step (a running mean over `smoothing` steps) as a PNG."""
    from soravid.charts import line_chart

    series = {}
    for stage in dict.fromkeys(stage for stage, _, _ in losses):
        steps = [step for s, step, _ in losses if s == stage]
        values = [loss for s, _, loss in losses if s == stage]
        series[stage] = (steps, running_mean(values, smoothing))
    return line_chart(path, series, "soravid training loss", "step", "loss", log_y=True)


def running_mean(values: list[float], window: int) -> list[float]:
    means, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        means.append(total / min(i + 1, window))
    return means
