"""The training stages.

Stage 1 trains the video autoencoder to reconstruct rendered clips. Stage 2 freezes it, fixes
its latent statistics, and trains the DiT with its text encoder by flow matching on latent
windows, each with a random number of leading latent frames given (almost) clean as context,
so the same weights start a clip from noise and continue one (chunks, `extend`). Stage 3, for
a DiT that takes the guidance scale, distils its classifier-free guidance into one pass. Then,
where the recipe has them, an opening DiT trains on clip openings alone and the autoencoder's
decoder alone on clips of the cases it drew worst, the DiT again on windows of such clips, and
the opening DiT again on openings of them.

Every step trains on one global batch: a micro-batch from each data shard (data.py). Under
torchrun (a process group set up by soravid.distributed) each rank holds `accumulate` shards,
trains through DistributedDataParallel, and only rank 0 writes checkpoints and reports
progress; one process holds them all. Either way the gradient is the mean over the global
batch, so W ranks with accumulate A train the same weights as one process with W*A.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from soravid.distributed import (
    all_gather_objects,
    all_reduce_mean,
    broadcast_from_main,
    data_parallel,
    is_main,
    rank,
    sync_gradients,
    world_size,
)
from soravid.errors import BadInputError
from soravid.flow import (
    denoise,
    flow_matching_loss,
    interpolate,
    sample_flow_times,
    velocity_loss,
)
from soravid.models.registry import SoravidModel, build_model
from soravid.pipeline import prompt_velocity, split_guidance
from soravid.training.checkpoint import (
    decode_json,
    encode_json,
    load_checkpoint,
    save_checkpoint,
)
from soravid.training.data import CaptionStyle, DataShard
from soravid.training.export import EXPORT_DTYPE
from soravid.training.latents import LatentPool, object_loss_weight
from soravid.training.recipes import (
    AutoencoderStage,
    DecoderStage,
    DistillStage,
    DiTStage,
    TrainRecipe,
)
from soravid.weights import (
    TRAINING_KEY,
    autocast,
    load_model,
    model_id,
    native_cpu_bfloat16,
    read_metadata,
)
from soravid.world import CAPTION_VOCABULARY
from soravid.world.spec import check_emphasis

STAGES = ("autoencoder", "dit", "distill", "opening", "decoder", "tune", "opening_tune", "done")
# The stages a run can start at from an exported model file (state_from_model), in order.
LATER_STAGES = ("opening", "decoder", "tune", "opening_tune")
GUIDANCE_EMBED = "dit.guidance_embed."


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
    shards: list[DataShard]  # this process's data shards
    shard_count: int  # over every process: ranks x accumulate
    device: torch.device
    stage: str = "autoencoder"
    step: int = 0
    losses: list[list] | None = None  # [stage, step, loss]
    ema: dict[str, Tensor] | None = None
    optimizer_state: dict | None = None
    seconds: float = 0.0  # training wall time so far, over all resumes
    teacher: dict[str, Tensor] | None = None  # stage 3: the DiT as stage 2 left it, frozen
    # A run started at the opening stage from an exported model (state_from_model): that
    # model's id, training seconds and final losses, which the export adds to its own.
    started_from: dict | None = None


def train(
    recipe: TrainRecipe,
    out_dir: Path,
    resume: bool = False,
    on_progress: TrainCallback | None = None,
    accumulate: int = 1,
    start_from: Path | None = None,
) -> TrainState:
    """Run (or continue) the recipe's stages, checkpointing into out_dir; returns the final state.

    `accumulate` micro-batches of recipe batch_size make this process's share of each step.
    `start_from`: a model file the recipe's earlier stages exported; the run starts at the
    stage after them from it (state_from_model)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        state = restore_state(recipe, out_dir, accumulate)
    elif start_from is not None:
        state = state_from_model(recipe, start_from, accumulate)
    else:
        state = new_state(recipe, accumulate)
    report = on_progress if is_main() else None
    if state.stage == "autoencoder":
        train_autoencoder(state, recipe, out_dir, report)
    if state.stage == "dit":
        train_dit(state, recipe, out_dir, report)
    if state.stage == "distill":
        train_distill(state, recipe, out_dir, report)
    if state.stage == "opening":
        train_opening(state, recipe, out_dir, report)
    if state.stage == "decoder":
        train_decoder(state, recipe, out_dir, report)
    if state.stage == "tune":
        train_tune(state, recipe, out_dir, report)
    if state.stage == "opening_tune":
        train_opening_tune(state, recipe, out_dir, report)
    return state


def new_state(recipe: TrainRecipe, accumulate: int = 1) -> TrainState:
    """Fresh weights (the same on every rank) and this rank's shards: r*A .. r*A+A-1."""
    if accumulate < 1:
        raise BadInputError(f"--accumulate must be at least 1, got {accumulate}")
    torch.manual_seed(recipe.seed)
    device = training_device()
    model = build_model(recipe.model, CAPTION_VOCABULARY).to(device)
    if (recipe.distill.steps > 0) != model.config.dit.guidance_embedding:
        raise BadInputError(
            f"model {recipe.model} and its recipe disagree: a DiT that takes the guidance "
            "scale (guidance_embedding) needs distill steps, and only such a DiT can have them"
        )
    opening = model.config.opening_dit
    if (
        (recipe.opening.steps > 0) != opening
        or (recipe.opening_tune.steps > 0 and not opening)
        or (opening and model.config.dit.guidance_embedding)
    ):
        raise BadInputError(
            f"model {recipe.model} and its recipe disagree: an opening DiT needs opening steps, "
            "only such a model can have opening or opening_tune steps, and its DiT must not "
            "take the guidance scale"
        )
    for stage in (recipe.dit, recipe.opening, recipe.decoder, recipe.tune, recipe.opening_tune):
        check_emphasis(stage.emphasis)  # at the start, not at the stage's first draw, hours in
    first = rank() * accumulate
    shards = [
        DataShard(recipe.canvases, recipe.fps, recipe.seed, index)
        for index in range(first, first + accumulate)
    ]
    return TrainState(model, shards, world_size() * accumulate, device, losses=[])


def training_device() -> torch.device:
    """The GPU when there is one (under torchrun, the one of this rank's LOCAL_RANK)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --- stage 1: the autoencoder ---


def train_autoencoder(
    state: TrainState, recipe: TrainRecipe, out_dir: Path, on_progress: TrainCallback | None
) -> None:
    stage = recipe.autoencoder
    autoencoder = state.model.autoencoder.train()
    trained = data_parallel(autoencoder)
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=stage.learning_rate, fused=True)

    def micro_loss(shard: DataShard) -> Tensor:
        video = shard.clips.batch(stage.batch_size, stage.clip_frames).video
        return reconstruction_loss(trained, video, stage, shard.clips.rng, state.device)

    run_stage(state, recipe, out_dir, StageRun(stage, trained, optimizer, micro_loss), on_progress)
    fit_latent_stats(state, recipe)
    advance_stage(state, recipe, out_dir)


def reconstruction_loss(
    autoencoder: nn.Module,
    video: Tensor,
    stage: AutoencoderStage | DecoderStage,
    rng: np.random.Generator,
    device: torch.device,
) -> Tensor:
    """The stage's loss on crops of `video` (B, 3, T, H, W) put through `autoencoder`."""
    video = detail_crops(video, stage.crop_size, stage.detail_crop_prob, rng).to(device)
    return autoencoder_loss(autoencoder(video), video, stage.edge_weight)


def detail_crops(video: Tensor, size: int, detail_prob: float, rng: np.random.Generator) -> Tensor:
    """(B, 3, T, H, W) -> (B, 3, T, size, size) (each side at most the canvas'): one crop per
    clip, centred with probability detail_prob on a pixel at an edge of the first frame, else
    anywhere. size 0 keeps the whole canvas."""
    if not size:
        return video
    crop = (min(size, video.shape[3]), min(size, video.shape[4]))
    return cut(video, crop_corners(video, crop, detail_prob, rng), crop)


def crop_corners(
    video: Tensor,
    crop: tuple[int, int],
    detail_prob: float,
    rng: np.random.Generator,
    align: int = 1,
) -> list[tuple[int, int]]:
    """The (top, left) of one (height, width) crop per clip of video (B, 3, T, H, W), inside
    the canvas and at multiples of `align`: centred with probability detail_prob on a pixel at
    an edge of the first frame, else anywhere."""
    batch, _, _, height, width = video.shape
    crop_h, crop_w = crop
    edges = edge_mask(video[:, :, :1])[:, 0, 0]  # (B, H, W)
    corners = []
    for index in range(batch):
        candidates = edges[index].nonzero()
        if len(candidates) and rng.random() < detail_prob:
            y, x = candidates[rng.integers(len(candidates))].tolist()
        else:
            y, x = int(rng.integers(height)), int(rng.integers(width))
        top = min(max(y - crop_h // 2, 0), height - crop_h) // align * align
        left = min(max(x - crop_w // 2, 0), width - crop_w) // align * align
        corners.append((top, left))
    return corners


def cut(
    tensor: Tensor, corners: list[tuple[int, int]], crop: tuple[int, int], scale: int = 1
) -> Tensor:
    """(B, C, T, H, W) -> (B, C, T, crop_h / scale, crop_w / scale): each clip's crop at its
    (top, left) corner, corners and crop given in pixels of a grid `scale` times finer (the
    video's, for a latent)."""
    height, width = crop[0] // scale, crop[1] // scale
    return torch.stack(
        [
            clip[:, :, top // scale : top // scale + height, left // scale : left // scale + width]
            for clip, (top, left) in zip(tensor, corners, strict=True)
        ]
    )


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
    """Normalise latents to zero mean and unit variance over DiT-sized windows, measured on
    shard 0's clips by rank 0, which sends them to the others: every rank must agree."""
    autoencoder = state.model.autoencoder.eval()
    if is_main():
        frames = autoencoder.pixel_frames(state.model.config.window_frames)
        clips = state.shards[0].clips
        latents = [
            autoencoder.encode(clips.batch(recipe.dit.batch_size, frames).video.to(state.device))
            for _ in range(recipe.autoencoder.stats_batches)
        ]
        # Batches differ in canvas: pool each channel's values as one long clip (1, C, N, 1, 1).
        pooled = [z.transpose(0, 1).reshape(1, z.shape[1], -1, 1, 1) for z in latents]
        autoencoder.set_latent_stats(torch.cat(pooled, dim=2))
    broadcast_from_main([autoencoder.latent_mean, autoencoder.latent_std])


# --- stage 2: the DiT and its text encoder ---


def train_dit(
    state: TrainState, recipe: TrainRecipe, out_dir: Path, on_progress: TrainCallback | None
) -> None:
    model = state.model
    if state.step == 0 and state.ema is None:
        for shard in state.shards:
            shard.start_stage(STAGES.index("dit"))
            fill_pool(shard, model, recipe.dit, state.device)
    run_dit_stage(state, recipe, out_dir, on_progress, trained_parameters(model), recipe.dit)
    advance_stage(state, recipe, out_dir)


def run_dit_stage(
    state: TrainState,
    recipe: TrainRecipe,
    out_dir: Path,
    on_progress: TrainCallback | None,
    parameters: dict[str, nn.Parameter],
    stage: DiTStage,
    opening: bool = False,
) -> None:
    """Train `parameters` by the flow-matching loss as `stage` says: stage 2 and the tune
    stage (the DiT and text encoder), or with `opening` the opening stage (the opening DiT
    and its text encoder, on openings alone)."""
    model = state.model
    text_encoder, dit = model.networks(opening)
    model.autoencoder.eval().requires_grad_(False)
    text_encoder.train()
    dit.train()
    dit.checkpoint_blocks = stage.activation_checkpointing
    optimizer = adamw(parameters, stage)
    after_step = keep_ema(state, parameters, stage.ema_decay)
    style = CaptionStyle(stage.uncond_prob, stage.paraphrase_prob, stage.part_drop_prob)
    objective = data_parallel(DiTObjective(model, opening))

    def micro_loss(shard: DataShard) -> Tensor:
        return objective(dit_inputs(model, shard, stage, style, state.device))

    run = StageRun(stage, objective, optimizer, micro_loss, after_step)
    with compiled(dit) if stage.compile else contextlib.nullcontext():
        run_stage(state, recipe, out_dir, run, on_progress)


@contextlib.contextmanager
def compiled(module: nn.Module) -> Iterator[None]:
    """Compile module's forward in place (its parameters and state_dict keep their names),
    one graph per input shape: a recipe has a few (canvases x windows or openings), and
    shape-generic graphs compiled for over 10 minutes on these cores without finishing.
    Eager again after the block: the later stages then run it as they do when a run resumes
    there in a new process, so a run gives the same weights whether or not it was resumed."""
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    module.compile(dynamic=False)
    try:
        yield
    finally:
        module._compiled_call_impl = None  # what nn.Module.compile set; there is no public undo


def trained_parameters(model: SoravidModel) -> dict[str, torch.nn.Parameter]:
    """The DiT's and the text encoder's parameters, by their names in the model, but for the
    guidance embedding: stage 2 never gives the scale, stage 3 trains it. Only these require
    gradients (DDP wants a gradient for every parameter that does)."""
    return train_only(
        model,
        {
            name: p
            for name, p in model.named_parameters()
            if name.startswith(("dit.", "text_encoder.")) and not name.startswith(GUIDANCE_EMBED)
        },
    )


def train_only(model: SoravidModel, trained: dict[str, nn.Parameter]) -> dict[str, nn.Parameter]:
    """Let only `trained` (by name) require gradients; return it."""
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in trained)
    return trained


def adamw(parameters: dict[str, nn.Parameter], stage: DiTStage | DistillStage) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        parameters.values(),
        lr=stage.learning_rate,
        betas=(0.9, 0.99),
        weight_decay=stage.weight_decay,
        fused=True,  # one kernel for all parameters: the per-tensor loop cost 5% of a step
    )


@dataclass
class DiTInputs:
    """One micro-batch of stage 2, drawn from a shard."""

    latent: Tensor  # (B, C, T, h, w) clean latent windows
    captions: list[str]
    t: Tensor  # (B, T) flow time of each frame
    noise: Tensor  # (B, C, T, h, w)
    is_context: Tensor  # (B, T) frames given as context, left out of the loss
    placement: Tensor | None = None  # (B, 1, T, h, w) placement maps, for a DiT that takes them
    object_weight: float = 0.0  # extra loss weight on the subject's latent pixels


@torch.no_grad()
def dit_inputs(
    model: SoravidModel,
    shard: DataShard,
    stage: DiTStage,
    style: CaptionStyle,
    device: torch.device,
) -> DiTInputs:
    generator = shard.noise
    drawn = bool(torch.rand((), generator=generator) < stage.image_prob)
    images = drawn and model.config.first_frames > 0  # a model that never opens alone: windows
    placement = None
    if images:
        latent, captions, placement = openings(model, shard, stage, style, device)
    else:
        latent, captions = latent_window(model, shard, stage, style, device)
    if model.config.dit.placement and placement is None:
        # Windows continue a clip, so they have no map; an all-zero one adds nothing and keeps
        # every parameter in the graph, as DDP needs on every rank.
        placement = torch.zeros_like(latent[:, :1])
    batch, frames = latent.shape[0], latent.shape[2]
    per_frame = bool(torch.rand((), generator=generator) < stage.per_frame_time_prob)
    t = sample_flow_times(batch, frames, generator, per_frame=per_frame, shift=stage.time_shift)
    lowest, highest = (0, 0) if images else (stage.min_context_frames, stage.max_context_frames)
    context = torch.randint(lowest, highest + 1, (batch, 1), generator=generator)
    is_context = torch.arange(frames)[None, :] < context  # (B, T)
    context_t = torch.rand(batch, frames, generator=generator) * stage.context_noise
    t = torch.where(is_context, context_t, t)
    noise = torch.randn(latent.shape, generator=generator)
    weight = stage.object_weight
    if images and stage.opening_object_weight is not None:
        weight = stage.opening_object_weight
    return DiTInputs(
        latent, captions, t.to(device), noise.to(device), is_context.to(device), placement, weight
    )


class DiTObjective(nn.Module):
    """The flow-matching loss of the text encoder and the DiT (with `opening`, the opening
    ones) as one forward, which is what DDP needs: one forward per backward, through the
    wrapped module."""

    def __init__(self, model: SoravidModel, opening: bool = False) -> None:
        super().__init__()
        self.model, self.opening = model, opening

    def forward(self, inputs: DiTInputs) -> Tensor:
        text = self.model.encode_text(inputs.captions, opening=self.opening)
        context_frames = inputs.is_context.sum(dim=1)  # (B,): each window's own
        return flow_matching_loss(
            lambda x, time: self.model.velocity(
                x, time, text, context_frames, placement=inputs.placement, opening=self.opening
            ),
            inputs.latent,
            inputs.noise,
            inputs.t,
            loss_mask=~inputs.is_context,
            weight=object_loss_weight(inputs.latent, inputs.object_weight),
        )


# --- stage 3: guidance distillation ---


def train_distill(
    state: TrainState, recipe: TrainRecipe, out_dir: Path, on_progress: TrainCallback | None
) -> None:
    stage, model = recipe.distill, state.model
    if stage.steps:
        if state.teacher is None:
            start_distillation(state)
        teacher = copy.deepcopy(model.dit)
        teacher.load_state_dict(state.teacher)
        teacher.eval().requires_grad_(False)
        model.autoencoder.eval()
        model.text_encoder.eval()
        model.dit.train()
        parameters = train_only(
            model, {name: p for name, p in model.named_parameters() if name.startswith("dit.")}
        )
        optimizer = adamw(parameters, stage)
        after_step = keep_ema(state, parameters, stage.ema_decay)
        style = CaptionStyle(0.0, recipe.dit.paraphrase_prob, recipe.dit.part_drop_prob)
        objective = data_parallel(DistillObjective(model, teacher))

        def micro_loss(shard: DataShard) -> Tensor:
            inputs = dit_inputs(model, shard, recipe.dit, style, state.device)
            scale = torch.rand(len(inputs.captions), generator=shard.noise)
            guidance = stage.min_guidance + (stage.max_guidance - stage.min_guidance) * scale
            return objective(inputs, guidance.to(state.device))

        run = StageRun(stage, objective, optimizer, micro_loss, after_step)
        run_stage(state, recipe, out_dir, run, on_progress)
    advance_stage(state, recipe, out_dir)


def start_distillation(state: TrainState) -> None:
    """Stage 2's EMA weights become the model's, and a frozen copy of its DiT the teacher."""
    model = state.model
    for name, tensor in state.ema.items():
        model.get_parameter(name).data.copy_(tensor)
    state.teacher = {name: t.detach().clone() for name, t in model.dit.state_dict().items()}
    state.ema = None
    for shard in state.shards:
        shard.start_stage(STAGES.index("distill"))


class DistillObjective(nn.Module):
    """The student's error against the teacher's guided velocity, as one forward (for DDP),
    weighted on the subject as stage 2's loss is."""

    def __init__(self, model: SoravidModel, teacher: nn.Module) -> None:
        super().__init__()
        self.model, self.teacher = model, teacher

    def forward(self, inputs: DiTInputs, guidance: Tensor) -> Tensor:
        batch = len(inputs.captions)
        context_frames = inputs.is_context.sum(dim=1)  # (B,)
        x = interpolate(inputs.latent, inputs.noise, inputs.t)
        placement = None if inputs.placement is None else torch.cat([inputs.placement] * 2)
        with torch.no_grad():
            text = self.model.encode_text(inputs.captions + [""] * batch)  # prompts, then empty
            both = self.teacher(
                torch.cat([x, x]),
                torch.cat([inputs.t, inputs.t]),
                text.tokens,
                text.mask,
                text.pooled,
                torch.cat([context_frames, context_frames]),
                placement=placement,
            )
            prompted, empty = both.chunk(2)
            target = empty + guidance[:, None, None, None, None] * (prompted - empty)
        velocity = self.model.velocity(
            x, inputs.t, text.first(batch), context_frames, guidance, inputs.placement
        )
        weight = object_loss_weight(inputs.latent, inputs.object_weight)
        return velocity_loss(velocity, target, loss_mask=~inputs.is_context, weight=weight)


# --- stage 4: the opening DiT ---


def train_opening(
    state: TrainState, recipe: TrainRecipe, out_dir: Path, on_progress: TrainCallback | None
) -> None:
    if recipe.opening.steps:
        model = state.model
        begin_later_dit_stage(state, recipe.opening, start_opening)
        parameters = opening_parameters(model)
        run_dit_stage(state, recipe, out_dir, on_progress, parameters, recipe.opening, True)
    advance_stage(state, recipe, out_dir)


def opening_parameters(model: SoravidModel) -> dict[str, nn.Parameter]:
    """The opening DiT's and its text encoder's parameters, by name; only these train."""
    opening_networks = ("opening_text_encoder.", "opening_dit.")
    return train_only(
        model,
        {name: p for name, p in model.named_parameters() if name.startswith(opening_networks)},
    )


def begin_later_dit_stage(
    state: TrainState, stage: DiTStage, start: Callable[[TrainState], None]
) -> None:
    """At a later DiT stage's first step (again, if resumed there): `start` the model as the
    stages before exported it, then fill the shards' pools as the stage draws them."""
    if state.step == 0:
        start(state)
        for shard in state.shards:
            fill_pool(shard, state.model, stage, state.device)


@torch.no_grad()
def start_opening(state: TrainState) -> None:
    """The opening DiT and text encoder start as copies of the DiT and text encoder, as the
    model ships after the stages before."""
    start_from_export(state)
    model = state.model
    model.opening_dit.load_state_dict(model.dit.state_dict())
    model.opening_text_encoder.load_state_dict(model.text_encoder.state_dict())


@torch.no_grad()
def start_from_export(state: TrainState) -> None:
    """The EMA weights of the stage before become the model's and every weight is rounded to
    the exported file's precision: the stage starting now starts from the model as it ships, so
    it is the same stage whether the run went on or started here from that model's file
    (state_from_model)."""
    model = state.model
    for name, tensor in (state.ema or {}).items():
        model.get_parameter(name).data.copy_(tensor)
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            tensor.copy_(tensor.to(EXPORT_DTYPE))
    state.ema = None
    for shard in state.shards:
        shard.start_stage(STAGES.index(state.stage))


def state_from_model(recipe: TrainRecipe, path: Path, accumulate: int = 1) -> TrainState:
    """A run of `recipe` at the start of one of its LATER_STAGES, from a model file that the
    same recipe's earlier stages exported: what finishing those stages would hold, without
    their hours. The file's recipe is this one but for that stage and those after it (which
    it did not run), and, for the opening stage, the model's name: it starts from a model
    without the opening networks."""
    state = new_state(recipe, accumulate)
    source = load_model(path)
    provenance = json.loads(read_metadata(path).get(TRAINING_KEY, "{}"))
    if "recipe" not in provenance:
        raise BadInputError(f"{path} does not say how it was trained; cannot start from it")
    trained_as = TrainRecipe.from_dict(provenance["recipe"])
    config = state.model.config
    # The sampling settings are the recipe's, written at export.
    source_config = replace(
        source.config, schedule_shift=config.schedule_shift, context_time=config.context_time
    )
    for first in reversed(LATER_STAGES):  # the latest stage the file lacks
        later = LATER_STAGES[LATER_STAGES.index(first) :]
        if not getattr(recipe, first).steps or any(getattr(trained_as, s).steps for s in later):
            continue
        as_if = replace(trained_as, **{stage: getattr(recipe, stage) for stage in later})
        model_as_if = source_config
        if first == "opening":
            as_if = replace(as_if, model=recipe.model)
            model_as_if = replace(source_config, name=config.name, opening_dit=True)
        if as_if == recipe and model_as_if == config:
            state.stage = first
            break
    else:
        raise BadInputError(
            f"{path} was not trained by recipe {recipe.model!r}'s stages before one of its "
            f"{', '.join(LATER_STAGES)} stages; --from takes a model those stages exported"
        )
    state.model.load_state_dict(source.state_dict(), strict=False)  # the opening DiT may lack
    state.started_from = {
        "model": model_id(path),
        "train_seconds": provenance["train_seconds"],
        "final_losses": provenance["final_losses"],
    }
    return state


# --- stage 5: the decoder ---


def train_decoder(
    state: TrainState, recipe: TrainRecipe, out_dir: Path, on_progress: TrainCallback | None
) -> None:
    stage = recipe.decoder
    if stage.steps:
        if state.step == 0:
            start_from_export(state)
        model = state.model
        decoder = {
            n: p for n, p in model.named_parameters() if n.startswith("autoencoder.decoder.")
        }
        parameters = train_only(model, decoder)
        # The encoder is frozen: its latents, which the DiT learnt, stay what they were.
        model.autoencoder.train()
        estimates = stage.estimate_prob > 0
        trained = data_parallel(DecoderObjective(model, stage) if estimates else model.autoencoder)
        optimizer = torch.optim.AdamW(
            parameters.values(), lr=stage.learning_rate, weight_decay=0.0, fused=True
        )

        def micro_loss(shard: DataShard) -> Tensor:
            canvas = shard.clips.random_canvas(stage.canvas_weights)
            video, attributes, _ = shard.clips.render(
                canvas, stage.batch_size, stage.clip_frames, stage.emphasis
            )
            if not estimates:
                return reconstruction_loss(trained, video, stage, shard.clips.rng, state.device)
            captions = [shard.clips.caption(attrs) for attrs in attributes]
            return trained(decoder_inputs(model, shard, stage, video, captions, state.device))

        after_step = keep_ema(state, parameters, stage.ema_decay) if stage.ema_decay else None
        run = StageRun(stage, trained, optimizer, micro_loss, after_step)
        run_stage(state, recipe, out_dir, run, on_progress)
    advance_stage(state, recipe, out_dir)


@dataclass
class DecoderInputs:
    """One micro-batch of the decoder stage, with estimates: crops of latents to decode and
    of the clips they should decode to."""

    latent: Tensor  # (B, C, Tl, size/sf, size/sf), some of them the DiT's estimates
    video: Tensor  # (B, 3, T, size, size)


@torch.no_grad()
def decoder_inputs(
    model: SoravidModel,
    shard: DataShard,
    stage: DecoderStage,
    video: Tensor,
    captions: list[str],
    device: torch.device,
) -> DecoderInputs:
    """Clips (B, 3, T, H, W) encoded whole, a share of them (stage.estimate_prob) replaced by
    the DiT's estimate as generation's last step makes it, and cropped on the latent grid."""
    video = video.to(device)
    latent = model.autoencoder.encode(video)  # (B, C, Tl, h, w)
    chosen = torch.rand(len(video), generator=shard.noise) < stage.estimate_prob
    if chosen.any():
        rows = chosen.nonzero()[:, 0].tolist()
        window = latent[rows]
        noise = torch.randn(window.shape, generator=shard.noise).to(device)
        estimate = dit_estimate(model, window, noise, [captions[i] for i in rows], stage)
        latent[rows] = estimate.to(latent.dtype)
    if not stage.crop_size:
        return DecoderInputs(latent, video)
    factor = model.config.autoencoder.spatial_factor
    crop = (min(stage.crop_size, video.shape[3]), min(stage.crop_size, video.shape[4]))
    corners = crop_corners(video, crop, stage.detail_crop_prob, shard.clips.rng, align=factor)
    return DecoderInputs(cut(latent, corners, crop, factor), cut(video, corners, crop))


def dit_estimate(
    model: SoravidModel, latent: Tensor, noise: Tensor, captions: list[str], stage: DecoderStage
) -> Tensor:
    """Latent windows (B, C, T, h, w) -> the same with every frame after the first (the
    context, kept) noised to flow time stage.estimate_time and made again in one guided step,
    as a generated chunk's last step makes them."""
    one_pass, two_pass = split_guidance(model, stage.estimate_guidance)
    prompts = captions + [""] * len(captions) if two_pass != 1.0 else captions
    text = model.encode_text(prompts)
    velocity = prompt_velocity(model, text, context_frames=1, guidance=one_pass)
    noised = interpolate(latent[:, :, 1:], noise[:, :, 1:], stage.estimate_time)
    start = torch.cat([noise[:, :, :1], noised], dim=2)  # denoise puts the context in
    schedule = torch.tensor([stage.estimate_time, 0.0])
    return denoise(
        velocity,
        start,
        latent[:, :, :1],
        1,
        schedule,
        guidance=two_pass,
        context_time=model.config.context_time,
    )


class DecoderObjective(nn.Module):
    """The decoder stage's loss with estimates as one forward, which DDP needs."""

    def __init__(self, model: SoravidModel, stage: DecoderStage) -> None:
        super().__init__()
        self.autoencoder, self.edge_weight = model.autoencoder, stage.edge_weight

    def forward(self, inputs: DecoderInputs) -> Tensor:
        decoded = self.autoencoder.decode(inputs.latent)
        return autoencoder_loss(decoded, inputs.video, self.edge_weight)


# --- stage 6: the DiT again, on the cases it draws worst ---


def train_tune(
    state: TrainState, recipe: TrainRecipe, out_dir: Path, on_progress: TrainCallback | None
) -> None:
    if recipe.tune.steps:
        begin_later_dit_stage(state, recipe.tune, start_from_export)
        parameters = trained_parameters(state.model)
        run_dit_stage(state, recipe, out_dir, on_progress, parameters, recipe.tune)
    advance_stage(state, recipe, out_dir)


# --- stage 7: the opening DiT again, on the openings it draws worst ---


def train_opening_tune(
    state: TrainState, recipe: TrainRecipe, out_dir: Path, on_progress: TrainCallback | None
) -> None:
    stage = recipe.opening_tune
    if stage.steps:
        begin_later_dit_stage(state, stage, start_from_export)
        parameters = opening_parameters(state.model)
        run_dit_stage(state, recipe, out_dir, on_progress, parameters, stage, opening=True)
    advance_stage(state, recipe, out_dir)


# --- the latent pool ---


def fill_pool(shard: DataShard, model: SoravidModel, stage: DiTStage, device) -> None:
    """The shard's pool of encoded clips, unless the stage trains on openings alone, and of
    openings where the stage keeps one."""
    shard.pool = None
    if stage.image_prob < 1:
        shard.pool = LatentPool(
            shard.clips, stage.pool_clips, stage.pool_latent_frames, stage.emphasis
        )
        frames = model.autoencoder.pixel_frames(stage.pool_latent_frames)
        shard.pool.fill(encoder(model, device), frames)
    first = model.config.first_frames
    if stage.opening_pool and first and stage.image_prob > 0:
        shard.openings = LatentPool(shard.clips, stage.opening_pool, first, stage.emphasis)
        shard.openings.fill(encoder(model, device), model.autoencoder.pixel_frames(first))


# A pool of large clips (recipe S: 32 clips of 93 frames of 224x128) is encoded a few clips at
# a time, so that its widest activation, base_channels per pixel, holds at most this many
# elements: 1 GiB in float32 on a GPU, and under the 2**31 a CUDA kernel indexes (encoding
# S's pool at once failed there). The shapes recipe's pools encode in groups of 33 clips or at
# once, which gave the same latents to the bit on these cores.
ENCODE_ELEMENTS = 2**28


def encoder(model: SoravidModel, device: torch.device) -> Callable[[Tensor], Tensor]:
    """Video (B, 3, T, H, W) -> latent on the CPU, encoded on the training device."""
    channels = model.config.autoencoder.base_channels

    @torch.no_grad()
    def encode(video: Tensor) -> Tensor:
        per_clip = video[0, 0].numel() * channels
        group = max(1, ENCODE_ELEMENTS // per_clip)
        parts = [model.autoencoder.encode(clips.to(device)).cpu() for clips in video.split(group)]
        return torch.cat(parts)

    return encode


@torch.no_grad()
def latent_window(
    model: SoravidModel,
    shard: DataShard,
    stage: DiTStage,
    style: CaptionStyle,
    device: torch.device,
) -> tuple[Tensor, list[str]]:
    """A batch of latent windows (B, C, window_frames, h, w) of one canvas and their captions,
    from the shard's pool after replacing its oldest clips of that canvas."""
    canvas = shard.clips.random_canvas(stage.canvas_weights)
    frames = model.autoencoder.pixel_frames(stage.pool_latent_frames)
    shard.pool.refresh(canvas, stage.pool_refresh, encoder(model, device), frames)
    window = model.config.window_frames
    latent, captions = shard.pool.windows(canvas, stage.batch_size, window, stage.start_prob, style)
    return latent.to(device), captions


@torch.no_grad()
def openings(
    model: SoravidModel,
    shard: DataShard,
    stage: DiTStage,
    style: CaptionStyle,
    device: torch.device,
) -> tuple[Tensor, list[str], Tensor | None]:
    """Clip openings of one canvas, each the model's `first_frames` latent frames alone (B, C,
    first_frames, h, w), as generation makes them, their captions and, for a DiT with
    placement, maps (B, 1, first_frames, h, w) of where each object starts, on the first latent
    frame: as many latent frames as a batch of windows, all of them at a clip's start. Newly
    rendered, or drawn from the shard's pool of openings after refreshing it."""
    canvas = shard.clips.random_canvas(stage.canvas_weights)
    first = model.config.first_frames
    count = stage.batch_size * model.config.window_frames // first
    frames = model.autoencoder.pixel_frames(first)
    if shard.openings is not None:
        shard.openings.refresh(canvas, stage.opening_refresh, encoder(model, device), frames)
        latent, captions, starts = shard.openings.whole_clips(canvas, count, style)
        latent = latent.to(device)
    else:
        video, attributes, starts = shard.clips.render(canvas, count, frames, stage.emphasis)
        latent = model.autoencoder.encode(video.to(device))  # (B, C, first_frames, h, w)
        captions = [shard.clips.caption(attrs, style) for attrs in attributes]
    return latent, captions, model.placement(starts, latent.shape[3:], first)


def keep_ema(
    state: TrainState, parameters: dict[str, nn.Parameter], target: float
) -> Callable[[], None]:
    """Start the stage's EMA of `parameters` (unless a resumed run brought it back) and return
    the step hook that updates it."""
    if state.ema is None:
        state.ema = {name: p.detach().clone() for name, p in parameters.items()}

    def after_step() -> None:
        update_ema(state.ema, parameters, ema_decay(target, state.step))

    return after_step


def ema_decay(target: float, step: int) -> float:
    """The EMA's decay after `step` steps: warmed up, (1 + step) / (10 + step), to the target.

    A fixed 0.999 from the first step keeps 0.999^n of the initial weights in the average: 22%
    after 1,500 steps, and the shipped model of 1,500 steps suffered from it."""
    return min(target, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema: dict[str, Tensor], parameters: dict, decay: float) -> None:
    for name, parameter in parameters.items():
        ema[name].lerp_(parameter.detach(), 1.0 - decay)


# --- the loop every stage shares ---


@dataclass
class StageRun:
    """What the shared loop needs from a stage."""

    hyper: AutoencoderStage | DiTStage | DistillStage | DecoderStage
    module: nn.Module  # the module trained (DDP-wrapped under torchrun)
    optimizer: torch.optim.Optimizer
    micro_loss: Callable[[DataShard], Tensor]  # a micro-batch from the shard -> its mean loss
    after_step: Callable[[], None] | None = None


def run_stage(
    state: TrainState,
    recipe: TrainRecipe,
    out_dir: Path,
    run: StageRun,
    on_progress: TrainCallback | None,
) -> None:
    hyper = run.hyper
    if state.optimizer_state is not None:
        run.optimizer.load_state_dict(state.optimizer_state)
    start, first = time.perf_counter(), state.step
    while state.step < hyper.steps:
        step_start = time.perf_counter()
        set_learning_rate(
            run.optimizer, hyper.learning_rate, state.step, hyper.warmup_steps, hyper.steps
        )
        loss = train_step(state, run)
        if run.after_step is not None:
            run.after_step()
        state.step += 1
        state.losses.append([state.stage, state.step, loss])
        state.seconds += time.perf_counter() - step_start
        if state.step % recipe.checkpoint_every == 0 or state.step == hyper.steps:
            state.optimizer_state = run.optimizer.state_dict()
            save(state, recipe, out_dir)
        if on_progress is not None:
            rate = (state.step - first) / max(time.perf_counter() - start, 1e-9)
            eta = (hyper.steps - state.step) / rate if rate > 0 else None
            on_progress(TrainEvent(state.stage, state.step, hyper.steps, loss, rate, eta))


def train_step(state: TrainState, run: StageRun) -> float:
    """One optimizer step on the global batch: a micro-batch from each of this process's
    shards, gradients averaged over them here and over the ranks by DDP in the last backward.
    Returns the loss averaged over the global batch."""
    run.optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=state.device)
    for index, shard in enumerate(state.shards):
        with sync_gradients(run.module, sync=index == len(state.shards) - 1):
            with training_autocast(state.device, run.hyper):
                loss = run.micro_loss(shard) / len(state.shards)
            loss.backward()
        total += loss.detach()
    torch.nn.utils.clip_grad_norm_(
        [p for group in run.optimizer.param_groups for p in group["params"]], 1.0
    )
    run.optimizer.step()
    return all_reduce_mean(total)


def training_autocast(device: torch.device, hyper: object) -> AbstractContextManager:
    """bfloat16 autocast on GPUs. On a CPU float32, unless the DiT stage asks for bfloat16
    (DiTStage.cpu_bfloat16) and the CPU multiplies it natively; attention then runs in the
    math kernel, as the CPU flash kernel's backward took 5x its forward."""
    wanted = isinstance(hyper, DiTStage) and hyper.cpu_bfloat16
    if not (wanted and device.type == "cpu" and native_cpu_bfloat16()):
        return autocast(device, training=True)
    stack = contextlib.ExitStack()
    stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
    stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
    return stack


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
    save(state, recipe, out_dir)


# --- checkpoints ---


def save(state: TrainState, recipe: TrainRecipe, out_dir: Path) -> None:
    """Every shard's generator states, gathered from all ranks, into rank 0's checkpoint.
    A collective: every rank calls it at the same step."""
    gathered = all_gather_objects([shard.state() for shard in state.shards])
    if is_main():
        shards = [shard for rank_shards in gathered for shard in rank_shards]
        save_checkpoint(checkpoint_state(state, recipe, shards), out_dir)


def checkpoint_state(state: TrainState, recipe: TrainRecipe, shards: list[dict]) -> dict:
    return {
        "recipe": encode_json(recipe.to_dict()),
        "stage": state.stage,
        "step": state.step,
        "model": state.model.state_dict(),
        "ema": state.ema,
        "optimizer": state.optimizer_state,
        "shards": shards,  # in shard order
        "torch_rng": torch.get_rng_state(),
        "losses": state.losses,
        "seconds": state.seconds,
        "teacher": state.teacher,
        "started_from": state.started_from,
    }


def restore_state(recipe: TrainRecipe, out_dir: Path, accumulate: int = 1) -> TrainState:
    """The checkpoint's state, each rank taking back its own shards."""
    saved = load_checkpoint(out_dir)
    # Read back as a recipe, so fields added since, at their defaults, are the same recipe.
    if TrainRecipe.from_dict(decode_json(saved["recipe"])) != recipe:
        raise BadInputError(f"{out_dir} was trained with another recipe; use a new --out folder")
    state = new_state(recipe, accumulate)
    shards = saved_shards(saved)
    if len(shards) != state.shard_count:
        raise BadInputError(
            f"{out_dir} was trained on {len(shards)} data shards (ranks x --accumulate), this "
            f"launch has {world_size()} x {accumulate}; resume with ranks x --accumulate = "
            f"{len(shards)}"
        )
    for shard in state.shards:
        shard.set_state(shards[shard.index])
    state.model.load_state_dict(saved["model"])
    torch.set_rng_state(saved["torch_rng"])
    state.stage, state.step = saved["stage"], saved["step"]
    state.optimizer_state = saved["optimizer"]
    if saved["ema"] is not None:
        state.ema = {name: tensor.to(state.device) for name, tensor in saved["ema"].items()}
    state.losses, state.seconds = saved["losses"], saved["seconds"]
    state.teacher = saved.get("teacher")
    state.started_from = saved.get("started_from")
    return state


def saved_shards(saved: dict) -> list[dict]:
    """The shards' states; a checkpoint from before shards held its one shard's states under
    data_rng and noise_rng."""
    if "shards" in saved:
        return saved["shards"]
    return [{"index": 0, "clips": saved["data_rng"], "noise": saved["noise_rng"]}]
