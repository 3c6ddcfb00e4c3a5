"""The two training stages and the export of the shipped model.

Stage 1 trains the video autoencoder to reconstruct rendered clips. Stage 2 freezes it, fixes
its latent statistics, and trains the DiT with its text encoder by flow matching on latent
windows, each with a random number of leading latent frames given (almost) clean as context,
so the same weights start a clip from noise and continue one (chunks, `extend`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from soravid.flow import flow_matching_loss, sample_flow_times
from soravid.models.registry import SoravidModel, build_model
from soravid.training.checkpoint import (
    decode_json,
    encode_json,
    load_checkpoint,
    save_checkpoint,
)
from soravid.training.data import CaptionStyle, ShapesClips
from soravid.training.recipes import AutoencoderStage, DiTStage, TrainRecipe
from soravid.world import CAPTION_VOCABULARY

STAGES = ("autoencoder", "dit", "done")


@dataclass
class TrainEvent:
    stage: str
    step: int  # steps done in this stage
    steps: int
    loss: float
    steps_per_second: float
    eta: float | None  # seconds left in this stage


TrainCallback = Callable[[TrainEvent], None]


@dataclass
class TrainState:
    """What a checkpoint holds besides the recipe."""

    model: SoravidModel
    data: ShapesClips
    stage: str = "autoencoder"
    step: int = 0
    losses: list[list] | None = None  # [stage, step, loss]
    ema: dict[str, Tensor] | None = None
    optimizer_state: dict | None = None
    seconds: float = 0.0  # training wall time so far, over all resumes
    noise: torch.Generator | None = None  # flow times, context lengths and noise of stage 2


def train(
    recipe: TrainRecipe,
    out_dir: Path,
    resume: bool = False,
    on_progress: TrainCallback | None = None,
) -> TrainState:
    """Run (or continue) both stages, checkpointing into out_dir; returns the final state."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = restore_state(recipe, out_dir) if resume else new_state(recipe)
    if state.stage == "autoencoder":
        train_autoencoder(state, recipe, out_dir, on_progress)
    if state.stage == "dit":
        train_dit(state, recipe, out_dir, on_progress)
    return state


def new_state(recipe: TrainRecipe) -> TrainState:
    torch.manual_seed(recipe.seed)
    model = build_model(recipe.model, CAPTION_VOCABULARY)
    data = ShapesClips(recipe.canvases, recipe.fps, recipe.seed)
    noise = torch.Generator().manual_seed(recipe.seed)
    return TrainState(model=model, data=data, losses=[], noise=noise)


# --- stage 1: the autoencoder ---


def train_autoencoder(
    state: TrainState, recipe: TrainRecipe, out_dir: Path, on_progress: TrainCallback | None
) -> None:
    stage = recipe.autoencoder
    autoencoder = state.model.autoencoder.train()
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=stage.learning_rate)

    def step() -> float:
        video = state.data.batch(stage.batch_size, stage.clip_frames).video
        return autoencoder_loss(autoencoder(video), video, stage.edge_weight)

    run_stage(state, recipe, out_dir, optimizer, step, stage.steps, stage, on_progress)
    fit_latent_stats(state, recipe)
    advance_stage(state, recipe, out_dir)


def autoencoder_loss(reconstruction: Tensor, video: Tensor, edge_weight: float) -> Tensor:
    """L1 + L2, weighted up where the target has edges: a blurred edge is what the judge sees."""
    error = reconstruction - video
    weight = 1.0 + edge_weight * edge_mask(video)
    return (weight * (error.abs() + error.pow(2))).mean()


def edge_mask(video: Tensor) -> Tensor:
    """(B, 1, T, H, W): 1 on pixels next to a colour change, else 0 (3x3 neighbourhood)."""
    frames = video.transpose(1, 2).flatten(0, 1)  # (B*T, 3, H, W)
    padded = F.pad(frames, (1, 1, 1, 1), mode="replicate")
    high = F.max_pool2d(padded, 3, stride=1)
    low = -F.max_pool2d(-padded, 3, stride=1)
    edges = ((high - low).amax(dim=1, keepdim=True) > 0.1).float()  # (B*T, 1, H, W)
    return edges.unflatten(0, (video.shape[0], video.shape[2])).transpose(1, 2)


@torch.no_grad()
def fit_latent_stats(state: TrainState, recipe: TrainRecipe) -> None:
    """Normalise latents to zero mean and unit variance over DiT-sized windows."""
    autoencoder = state.model.autoencoder.eval()
    frames = autoencoder.pixel_frames(state.model.config.window_frames)
    stage = recipe.autoencoder
    latents = [
        autoencoder.encode(state.data.batch(recipe.dit.batch_size, frames).video)
        for _ in range(stage.stats_batches)
    ]
    autoencoder.set_latent_stats(torch.cat(latents))


# --- stage 2: the DiT and its text encoder ---


def train_dit(
    state: TrainState, recipe: TrainRecipe, out_dir: Path, on_progress: TrainCallback | None
) -> None:
    stage = recipe.dit
    model = state.model
    model.autoencoder.eval().requires_grad_(False)
    model.dit.train()
    model.text_encoder.train()
    parameters = trained_parameters(model)
    optimizer = torch.optim.AdamW(
        parameters.values(),
        lr=stage.learning_rate,
        betas=(0.9, 0.99),
        weight_decay=stage.weight_decay,
    )
    if state.ema is None:
        state.ema = {name: p.detach().clone() for name, p in parameters.items()}
    style = CaptionStyle(stage.uncond_prob, stage.paraphrase_prob, stage.part_drop_prob)

    def step() -> float:
        return dit_loss(model, state.data, stage, style, state.noise)

    def after_step() -> None:
        update_ema(state.ema, parameters, stage.ema_decay)

    run_stage(state, recipe, out_dir, optimizer, step, stage.steps, stage, on_progress, after_step)
    advance_stage(state, recipe, out_dir)


def trained_parameters(model: SoravidModel) -> dict[str, torch.nn.Parameter]:
    """The DiT's and the text encoder's parameters, by their names in the model."""
    return {
        name: p
        for name, p in model.named_parameters()
        if name.startswith(("dit.", "text_encoder."))
    }


def dit_loss(
    model: SoravidModel,
    data: ShapesClips,
    stage: DiTStage,
    style: CaptionStyle,
    generator: torch.Generator,
) -> Tensor:
    latent, captions = latent_window(model, data, stage, style)
    batch, frames = latent.shape[0], latent.shape[2]
    per_frame = bool(torch.rand((), generator=generator) < stage.per_frame_time_prob)
    t = sample_flow_times(batch, frames, generator, per_frame=per_frame)
    context = torch.randint(0, stage.max_context_frames + 1, (batch, 1), generator=generator)
    is_context = torch.arange(frames)[None, :] < context  # (B, T)
    context_t = torch.rand(batch, frames, generator=generator) * stage.context_noise
    t = torch.where(is_context, context_t, t)
    noise = torch.randn(latent.shape, generator=generator)
    text = model.encode_text(captions)
    return flow_matching_loss(
        lambda x, time: model.velocity(x, time, text), latent, noise, t, loss_mask=~is_context
    )


@torch.no_grad()
def latent_window(
    model: SoravidModel, data: ShapesClips, stage: DiTStage, style: CaptionStyle
) -> tuple[Tensor, list[str]]:
    """A batch of latent windows (B, C, window_frames, h, w) and their captions.

    Every chunk after a clip's first starts mid-clip, where the first latent frame covers
    temporal_factor frames rather than one; a share of windows is cut from mid-clip to match.
    """
    window = model.config.window_frames
    offset = stage.mid_clip_offset if data.rng.random() < stage.mid_clip_prob else 0
    frames = model.autoencoder.pixel_frames(window + offset)
    clips = data.batch(stage.batch_size, frames, style)
    latent = model.autoencoder.encode(clips.video)  # (B, C, window + offset, h, w)
    return latent[:, :, offset:], clips.captions


@torch.no_grad()
def update_ema(ema: dict[str, Tensor], parameters: dict, decay: float) -> None:
    for name, parameter in parameters.items():
        ema[name].lerp_(parameter.detach(), 1.0 - decay)


# --- the loop both stages share ---


def run_stage(
    state: TrainState,
    recipe: TrainRecipe,
    out_dir: Path,
    optimizer: torch.optim.Optimizer,
    step: Callable[[], Tensor],
    steps: int,
    stage: AutoencoderStage | DiTStage,
    on_progress: TrainCallback | None,
    after_step: Callable[[], None] | None = None,
) -> None:
    if state.optimizer_state is not None:
        optimizer.load_state_dict(state.optimizer_state)
    start, first = time.perf_counter(), state.step
    while state.step < steps:
        step_start = time.perf_counter()
        set_learning_rate(optimizer, stage.learning_rate, state.step, stage.warmup_steps, steps)
        loss = step()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            [p for group in optimizer.param_groups for p in group["params"]], 1.0
        )
        optimizer.step()
        if after_step is not None:
            after_step()
        state.step += 1
        state.losses.append([state.stage, state.step, loss.item()])
        state.seconds += time.perf_counter() - step_start
        if state.step % recipe.checkpoint_every == 0 or state.step == steps:
            state.optimizer_state = optimizer.state_dict()
            save_checkpoint(checkpoint_state(state, recipe), out_dir)
        if on_progress is not None:
            rate = (state.step - first) / max(time.perf_counter() - start, 1e-9)
            eta = (steps - state.step) / rate if rate > 0 else None
            on_progress(TrainEvent(state.stage, state.step, steps, state.losses[-1][2], rate, eta))


def set_learning_rate(
    optimizer: torch.optim.Optimizer, peak: float, step: int, warmup: int, steps: int
) -> None:
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < warmup:
        rate = peak * (step + 1) / warmup
    else:
        progress = (step - warmup) / max(1, steps - warmup)
        rate = peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    for group in optimizer.param_groups:
        group["lr"] = rate


def advance_stage(state: TrainState, recipe: TrainRecipe, out_dir: Path) -> None:
    state.stage = STAGES[STAGES.index(state.stage) + 1]
    state.step = 0
    state.optimizer_state = None
    save_checkpoint(checkpoint_state(state, recipe), out_dir)


# --- checkpoints ---


def checkpoint_state(state: TrainState, recipe: TrainRecipe) -> dict:
    return {
        "recipe": encode_json(recipe.to_dict()),
        "stage": state.stage,
        "step": state.step,
        "model": state.model.state_dict(),
        "ema": state.ema,
        "optimizer": state.optimizer_state,
        "data_rng": encode_json(state.data.state()),
        "torch_rng": torch.get_rng_state(),
        "noise_rng": state.noise.get_state(),
        "losses": state.losses,
        "seconds": state.seconds,
    }


def restore_state(recipe: TrainRecipe, out_dir: Path) -> TrainState:
    saved = load_checkpoint(out_dir)
    if decode_json(saved["recipe"]) != recipe.to_dict():
        raise ValueError(f"{out_dir} was trained with another recipe; use a new --out folder")
    state = new_state(recipe)
    state.model.load_state_dict(saved["model"])
    state.data.set_state(decode_json(saved["data_rng"]))
    torch.set_rng_state(saved["torch_rng"])
    state.noise.set_state(saved["noise_rng"])
    state.stage, state.step = saved["stage"], saved["step"]
    state.ema, state.optimizer_state = saved["ema"], saved["optimizer"]
    state.losses, state.seconds = saved["losses"], saved["seconds"]
    return state
