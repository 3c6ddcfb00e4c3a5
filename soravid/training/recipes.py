"""Training recipes: everything one `soravid train` run needs, as data.

A recipe names a model config (models/registry.py) and sets its stages: the autoencoder
first, then the DiT with its text encoder on the frozen autoencoder's latents, then, for a DiT
that takes the guidance scale, the distillation of its guidance. Step counts, not wall time,
fix a run, so the same recipe and seed give the same weights.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass
class AutoencoderStage:
    steps: int = 1200
    batch_size: int = 8
    clip_frames: int = 9  # 1 mod the temporal factor: the first frame alone, then two groups
    # The autoencoder is convolutional, so it trains on crops: a fraction of the cost per
    # clip. Half the crops are centred on detail (an edge), where reconstruction is hard; the
    # rest anywhere, so plain background keeps its weight (with 32-px crops on detail only,
    # it collapsed to grey).
    crop_size: int = 48
    detail_crop_prob: float = 0.5
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    edge_weight: float = 8.0  # extra loss weight on pixels at edges, where blur costs most
    stats_batches: int = 8  # batches of DiT windows whose latents set the normalisation


@dataclass
class DiTStage:
    steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 8e-4
    warmup_steps: int = 150
    weight_decay: float = 0.01
    ema_decay: float = 0.998
    uncond_prob: float = 0.1  # empty caption, so classifier-free guidance has an unconditional
    paraphrase_prob: float = 0.8  # otherwise the canonical caption
    part_drop_prob: float = 0.15  # each of size, motion, background left out of the caption
    # Flow times: uniform, shifted to favour noise (flow.sample_flow_times); 3 puts 14% of
    # them above 0.95, where generation starts and only the caption says what to draw.
    time_shift: float = 3.0
    # Clean latent frames given as context: min..max, uniformly. A clip starts as one latent
    # frame made alone (image_prob below), so every window the sampler runs has context.
    min_context_frames: int = 1
    max_context_frames: int = 2
    context_noise: float = 0.1  # context frames sit at a flow time drawn from [0, this]
    per_frame_time_prob: float = 0.2  # independent time per frame (diffusion forcing)
    # Windows are cut from a pool of encoded clips (latents.py): `pool_clips` per canvas of
    # `pool_latent_frames` latent frames, `pool_refresh` replaced each step.
    pool_clips: int = 96
    pool_latent_frames: int = 11
    pool_refresh: int = 1
    # How often each of the recipe's canvases gives a step's windows or openings, relative to
    # the others; None: all alike. Steps on one canvas carry to the others only in part
    # (README, "Where the loss goes").
    canvas_weights: list[float] | None = None
    start_prob: float = 0.35  # a window starts at a clip's first frame, as generation does
    # A share of steps trains on clip openings alone: the model's first_frames latent frames
    # (for the shapes model, frame 0, which the causal autoencoder encodes by itself), as many
    # latent frames as a batch of windows, freshly rendered: where the object is gets decided
    # there, in one frame, not across a moving window.
    image_prob: float = 0.3
    # Openings kept encoded per canvas, `opening_refresh` of the step's canvas replaced each
    # opening step, as the window pool does; 0: every opening step renders and encodes its own
    # (12-15% of the shapes recipe's DiT time by py-spy).
    opening_pool: int = 0
    opening_refresh: int = 16
    # Extra loss weight on the latent pixels of the subject (latents.object_mask): the rest of
    # a shapes-world frame is one flat colour, learnt early, whose noise then swamps the few
    # pixels where shape and motion are. 0: plain mean.
    object_weight: float = 0.0
    # The same on opening steps; None: object_weight. With 20% of the steps openings, both
    # weighted 12x, continuation fell from 54% of windows keeping one object to 6% in a
    # 1,000-step probe (README, "Where the loss goes").
    opening_object_weight: float | None = None
    # On a CPU that multiplies bfloat16 natively (AMX, AVX512-BF16), train in bfloat16
    # autocast: a 600-step probe ran 1.5x the steps per second of float32 (one thread) with
    # the same losses and judged the same (README, "Training in bfloat16 on a CPU"). Off in
    # the recipes whose weights were trained without it, so they reproduce.
    cpu_bfloat16: bool = False
    # Compile the DiT (torch.compile, one static graph per window or opening shape of each
    # canvas): on these cores 1.48x the steps per second of the shapes DiT in bfloat16 after
    # about 85 s per shape. Off in the recipes trained without it, so they reproduce.
    compile: bool = False
    # Recompute each DiT block's activations in the backward pass instead of keeping them
    # (DiT.checkpoint_blocks): the same gradients, less memory, more compute. Recipe B's DiT
    # stage peaked at 94 GiB without it (README, "Training on several GPUs and machines").
    activation_checkpointing: bool = False
    # Attribute values its clips draw more often than the world does (world.sample_attributes).
    emphasis: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class DistillStage:
    """Stage 3, for a model whose DiT takes the guidance scale (DiTConfig.guidance_embedding):
    it learns to give in one pass, told the scale w, the guided velocity that its frozen self
    of the end of stage 2 gives in two, v_empty + w (v_prompt - v_empty). Sampling then costs
    half. Windows, openings and flow times are drawn as in stage 2."""

    steps: int = 0  # 0: no such stage (the model samples with classifier-free guidance)
    batch_size: int = 32
    learning_rate: float = 2e-4
    warmup_steps: int = 50
    weight_decay: float = 0.0
    ema_decay: float = 0.99
    min_guidance: float = 1.0  # scales drawn uniformly: the sampler may ask for any of them
    max_guidance: float = 5.0


@dataclass
class DecoderStage:
    """After the opening stage: the autoencoder's decoder alone, on its frozen encoder's
    latents of clips drawn with `emphasis`. The latents the DiT learnt stay what they were;
    only how they are drawn changes. The autoencoder drew small squares and triangles on gray
    as blobs, red and cyan worst, which the judge called circles (README, "Where moving small
    objects lose their shape")."""

    steps: int = 0  # 0: no such stage
    batch_size: int = 8
    clip_frames: int = 9
    crop_size: int = 48
    detail_crop_prob: float = 0.7
    learning_rate: float = 3e-4
    warmup_steps: int = 50
    edge_weight: float = 8.0
    canvas_weights: list[float] | None = None  # as DiTStage's
    # Attribute values drawn more often than the world draws them (world.sample_attributes).
    emphasis: dict[str, dict[str, float]] = field(default_factory=dict)
    ema_decay: float = 0.0  # 0: the last step's weights ship, as the decoder stages before did
    # Share of clips decoded from the DiT's estimate of their latents, not the latents
    # themselves: generation's last sampling step jumps from flow time `estimate_time` (8 steps
    # at shift 3: 0.3) to 0 in one step, with guidance `estimate_guidance`, and that estimate,
    # a mean over what the frames might be, has softer corners and tips than the encoder's
    # latents (README, "Decoding what the DiT draws"). Frame 0 of each clip is its context, as
    # in a chunk; clip_frames should make one DiT window. 0: plain reconstruction, crops of
    # the clips encoded, as the decoder stages before trained.
    estimate_prob: float = 0.0
    estimate_time: float = 0.3
    estimate_guidance: float = 2.0


@dataclass
class TrainRecipe:
    model: str = "shapes"
    seed: int = 0
    fps: int = 8
    # (width, height) of every canvas the presets need: positions are rotary, but the model
    # only learns the aspects it sees.
    canvases: list[list[int]] = field(
        default_factory=lambda: [[96, 64], [64, 64], [64, 112], [112, 64]]
    )
    autoencoder: AutoencoderStage = field(default_factory=AutoencoderStage)
    dit: DiTStage = field(default_factory=DiTStage)
    distill: DistillStage = field(default_factory=DistillStage)
    # Last, for a model with an opening DiT (ModelConfig.opening_dit): it and its text encoder
    # start as copies of the DiT and text encoder and train on openings alone (image_prob 1),
    # every other network frozen.
    opening: DiTStage = field(default_factory=lambda: DiTStage(steps=0))
    decoder: DecoderStage = field(default_factory=DecoderStage)
    # Last, the DiT and its text encoder again, from the model as exported after the stages
    # before, on windows of clips drawn with the stage's emphasis: the cases it draws worst.
    tune: DiTStage = field(default_factory=lambda: DiTStage(steps=0))
    # After it, for a model with an opening DiT: it and its text encoder again, from the model
    # as exported, on openings drawn with the stage's emphasis (image_prob 1).
    opening_tune: DiTStage = field(default_factory=lambda: DiTStage(steps=0))
    checkpoint_every: int = 100
    # Sampling settings written into the exported model (ModelConfig.schedule_shift, context_time).
    schedule_shift: float = 2.0
    context_time: float = 0.05

    def __post_init__(self) -> None:
        # Checked here, not at the DiT stage's first draw, after the autoencoder's 20 minutes.
        for name in ("dit", "opening", "decoder", "tune", "opening_tune"):
            weights = getattr(self, name).canvas_weights
            if weights is not None and (len(weights) != len(self.canvases) or min(weights) <= 0):
                raise ValueError(f"{name}.canvas_weights: one positive weight per canvas")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainRecipe:
        stages = {
            "autoencoder": AutoencoderStage,
            "dit": DiTStage,
            "distill": DistillStage,
            "opening": DiTStage,
            "decoder": DecoderStage,
            "tune": DiTStage,
            "opening_tune": DiTStage,
        }
        values = {k: stages[k](**v) if k in stages else v for k, v in data.items()}
        return cls(**values)


# shapes-placed's DiT stage, which shapes-context varies.
PLACED_DIT = DiTStage(steps=2600, opening_pool=512, opening_refresh=16, object_weight=12.0)
# The same as generation runs, as the recipe probes ran it (README, "Where the loss goes"): one
# context frame, one flow time per window, a fifth of the steps openings, the 96x64 default
# canvas three times as often as each other one.
PLACED_DIT_AS_GENERATED = replace(
    PLACED_DIT,
    max_context_frames=1,
    per_frame_time_prob=0.0,
    image_prob=0.2,
    canvas_weights=[3.0, 1.0, 1.0, 1.0],
)

# The tests' recipes' parts.
TINY_CANVASES = [[32, 32], [48, 32]]
TINY_AUTOENCODER = AutoencoderStage(steps=3, batch_size=2, clip_frames=5, stats_batches=3)
TINY_DIT = DiTStage(
    steps=3,
    batch_size=2,
    max_context_frames=1,
    pool_clips=3,
    pool_latent_frames=4,
    pool_refresh=1,
    opening_pool=5,
    opening_refresh=2,
    object_weight=4.0,
)

# The recipe of the embedded model (soravid/weights/shapes.safetensors): `soravid train`'s
# default. It is SHAPES_COMPILED_TUNE (below): the continuing DiT on windows alone, compiled,
# then an opening DiT, a decoder stage (which also decodes the DiT's estimates) and a tune
# stage; 116.6 minutes of training steps on 2 AMX cores.
EMBEDDED_RECIPE = "shapes-compiled-tune"
# The recipe of the embedded model six before: shapes-placed-bf16 (below) with an opening DiT
# (model shapes-opening), 2,400 steps on openings alone from the DiT (README, "An opening DiT"). Its
# first two stages are shapes-placed-bf16's, so `soravid train --from` that recipe's exported
# model runs its last stage alone, as the shipped weights were made.
SHAPES_OPENING = TrainRecipe(
    model="shapes-opening",
    autoencoder=AutoencoderStage(steps=3000),
    dit=replace(PLACED_DIT_AS_GENERATED, steps=14000, start_prob=0.5, cpu_bfloat16=True),
    opening=replace(
        PLACED_DIT_AS_GENERATED,
        steps=2400,
        learning_rate=3e-4,
        warmup_steps=50,
        image_prob=1.0,
        start_prob=0.5,
        cpu_bfloat16=True,
    ),
)
# The embedded model five before: the same with 3,600 opening steps, as its opening DiT was still
# improving at 2,400 (README, "An opening DiT"); about 12 minutes more on fast cores.
SHAPES_OPENING_3600 = replace(SHAPES_OPENING, opening=replace(SHAPES_OPENING.opening, steps=3600))
# The embedded model four before: shapes-opening-3600 and a last stage on its decoder alone, 17
# minutes on the slowest cores (1 step/s). Gray backgrounds drawn 5 times in 8 and small
# objects 85 times in 100: 1,000 steps took a round trip through the autoencoder from 18/24
# small squares and 14/24 triangles judged right on gray to 24/24 and 22/24, and the other
# backgrounds stayed right (README, "Where moving small objects lose their shape").
SHAPES_OPENING_DECODER = replace(
    SHAPES_OPENING_3600,
    decoder=DecoderStage(
        steps=1000,
        canvas_weights=[3.0, 1.0, 1.0, 1.0],
        emphasis={"background": {"gray": 0.625}, "size": {"small": 0.85}},
    ),
)
# The embedded model three before: shapes-opening-decoder and a last stage on the DiT again, 400
# steps on windows alone of clips drawn with small objects, squares and triangles, gray and
# bouncing more often (README, "Where moving small objects lose their shape").
SHAPES_OPENING_TUNE = replace(
    SHAPES_OPENING_DECODER,
    tune=replace(
        SHAPES_OPENING.dit,
        steps=400,
        learning_rate=2e-4,
        warmup_steps=20,
        image_prob=0.0,
        ema_decay=0.995,
        emphasis={
            "size": {"small": 0.7},
            "shape": {"square": 0.4, "triangle": 0.4},
            "background": {"gray": 0.4},
            "motion": {"bouncing": 0.35},
        },
    ),
)
# The embedded model two before: shapes-opening-tune with a decoder stage three times as long, at
# 3x the learning rate and 3x the edge weight, with squares and triangles drawn 4 times in 10 each
# and an EMA: the decoder before drew small squares' corners and triangles' tips soft, so by
# SHAPES_WORLD.md's ratio of area to bounding box they read as circles (README, "Shape by the
# contract's own rule"). The encoder, and so the latents the DiT learnt, stay as they were, and
# the tune stage gives the DiT of shapes-opening-tune to the bit; 25 minutes more here.
SHAPES_CRISP_TUNE = replace(
    SHAPES_OPENING_TUNE,
    decoder=DecoderStage(
        steps=3000,
        learning_rate=1e-3,
        edge_weight=24.0,
        canvas_weights=[3.0, 1.0, 1.0, 1.0],
        emphasis={
            "background": {"gray": 0.5},
            "size": {"small": 0.85},
            "shape": {"square": 0.4, "triangle": 0.4},
        },
        ema_decay=0.995,
    ),
)

# The embedded model before: shapes-crisp-tune whose decoder stage also decodes the DiT's estimates:
# half its clips are made again, after their first latent frame, in one guided step from flow
# time 0.3, as generation's last step makes them (DecoderStage.estimate_prob), on windows of
# 13 frames, the DiT's (README, "Decoding what the DiT draws"). The tune stage gives
# shapes-crisp-tune's DiT to the bit; the decoder stage takes 14 minutes more here (1.28
# steps/s, not 2.0).
SHAPES_ESTIMATE_TUNE = replace(
    SHAPES_CRISP_TUNE,
    decoder=replace(SHAPES_CRISP_TUNE.decoder, clip_frames=13, estimate_prob=0.5),
)

# Toward the 2-hour bar (README, "What a 2-hour run on such cores would have to cut"): the
# embedded recipe's first stages with the DiT's cut to 5,000 steps on windows alone, which
# continues as well as its 14,000 with openings, then the opening stage, 1,600 steps at 5e-4,
# from that DiT, which never drew an opening. Its openings fell short: shape 62% (seed 0, 100
# 5-s clips; 70% after 1,600 more opening steps), against the shipped model's 96%. Not shipped.
# Its first frames reach the shipped opening DiT's 96% only after about 5,600 opening steps
# (README, "What a 2-hour run on such cores would have to cut").
SHAPES_WINDOWS = replace(
    SHAPES_OPENING,
    dit=replace(SHAPES_OPENING.dit, steps=5000, image_prob=0.0),
    opening=replace(SHAPES_OPENING.opening, steps=1600, learning_rate=5e-4),
)

# The embedded recipe with shapes-windows' DiT stage (5,000 steps on windows alone) and an
# opening stage long enough for that DiT, which never drew an opening: one cosine of 5,600
# steps at 5e-4, as many openings as the warm-restart probe whose first frames reached the
# shipped opening DiT's 96% (README, "What a 2-hour run on such cores would have to cut").
# The decoder and tune stages are the embedded recipe's. One run on AMX cores took 120.3
# minutes; its model met the eval's bar on seed 0 just (91% of clips passing every window)
# but not on seed 2 (88%), its continuing DiT bouncing worse than the shipped one. Not
# shipped (README, "What a 2-hour run on such cores would have to cut").
SHAPES_WINDOWS_TUNE = replace(
    SHAPES_ESTIMATE_TUNE,
    dit=SHAPES_WINDOWS.dit,
    opening=replace(SHAPES_WINDOWS.opening, steps=5600),
)

# The embedded model (README, "Reproducing it"): shapes-windows-tune with its DiT stage
# compiled (DiTStage.compile), 1.52x the steps per second on AMX cores after about a minute
# per shape: the continuing DiT, which the network swaps found to be that model's gap to the
# shipped one, gets 7,000 steps on windows alone, not 5,000; the decoder stage 2,000, not
# 3,000 (3,000 more took the shipped recipe's decoder one point, README "Shape by the
# contract's own rule"). The opening stage is not compiled: torch 2.13's inductor wrote C++
# for an opening graph that g++ rejected (a bfloat16 reduction's accumulator declared twice)
# on 2026-12-05's AMX cores.
SHAPES_COMPILED_TUNE = replace(
    SHAPES_WINDOWS_TUNE,
    dit=replace(SHAPES_WINDOWS_TUNE.dit, steps=7000, compile=True),
    decoder=replace(SHAPES_WINDOWS_TUNE.decoder, steps=2000),
)

RECIPES: dict[str, TrainRecipe] = {
    # The embedded model before shapes-placed-long: 104 minutes measured on 2 slower cores.
    "shapes": TrainRecipe(),
    # The same with the placement map (README, "The embedded model"), openings drawn from a
    # pool of 512 encoded first frames per canvas, 16 of them replaced per opening step, and
    # the loss weighted 13x on the subject's latent pixels (README, "Where the loss goes").
    # 2,600 DiT steps, not 3,000: its run of 3,000 took 123 min on a day when these cores ran
    # the DiT at 0.53 steps/s, and the 2-hour bar needs headroom for such days. Its run as it
    # stands took 117.5 min; it drew colour and size better than the shipped model, shape and
    # motion worse (README, "Where the loss goes"), so it is not shipped.
    "shapes-placed": TrainRecipe(model="shapes-placed", dit=PLACED_DIT),
    # shapes-placed on model shapes-context (the last context frame beside each frame made),
    # trained as generation runs.
    "shapes-context": TrainRecipe(model="shapes-context", dit=PLACED_DIT_AS_GENERATED),
    # The embedded model before (78 minutes measured): shapes-placed for 2 cores that multiply 6x
    # faster than those the recipes above were timed on (AMX; float32 matmul 360 GFLOP/s, not
    # 60). The DiT stage runs at about 2 steps/s: 8,000 steps; the autoencoder 3,000 (its
    # 2,500-step predecessor re-encoded 23 of 24 clips right, against 10 of 12 for 1,200).
    # Trained as generation runs, half the windows starting at a clip's first frame, the
    # chunk that generation lost its subject in.
    "shapes-placed-long": TrainRecipe(
        model="shapes-placed",
        autoencoder=AutoencoderStage(steps=3000),
        dit=replace(PLACED_DIT_AS_GENERATED, steps=8000, start_prob=0.5),
    ),
    # The embedded model before (113 minutes measured, README "Reproducing it"): shapes-placed-long
    # trained in bfloat16 autocast (DiTStage.cpu_bfloat16), which runs the DiT about 1.5x the
    # steps per second on these cores: 14,000 DiT steps in the time 8,000 took, as that model
    # was still improving at 8,000. Final DiT loss 0.140 against its 0.168.
    "shapes-placed-bf16": TrainRecipe(
        model="shapes-placed",
        autoencoder=AutoencoderStage(steps=3000),
        dit=replace(PLACED_DIT_AS_GENERATED, steps=14000, start_prob=0.5, cpu_bfloat16=True),
    ),
    "shapes-opening": SHAPES_OPENING,
    "shapes-opening-3600": SHAPES_OPENING_3600,
    "shapes-opening-decoder": SHAPES_OPENING_DECODER,
    "shapes-opening-tune": SHAPES_OPENING_TUNE,
    "shapes-crisp-tune": SHAPES_CRISP_TUNE,
    "shapes-estimate-tune": SHAPES_ESTIMATE_TUNE,
    "shapes-windows": SHAPES_WINDOWS,
    "shapes-windows-tune": SHAPES_WINDOWS_TUNE,
    "shapes-compiled-tune": SHAPES_COMPILED_TUNE,
    # The same and a last stage on the opening DiT, 400 steps on openings drawn with small
    # squares and triangles and gray more often: half the failing clips of the embedded
    # model's evaluation drew a small square or triangle round in their very first frame.
    "shapes-opening-tune-openings": replace(
        SHAPES_OPENING_TUNE,
        opening_tune=replace(
            SHAPES_OPENING.opening,
            steps=400,
            learning_rate=1.5e-4,
            warmup_steps=20,
            ema_decay=0.995,
            canvas_weights=[2.0, 1.0, 2.0, 1.0],
            emphasis={
                "size": {"small": 0.7},
                "shape": {"square": 0.45, "triangle": 0.35},
                "background": {"gray": 0.4},
            },
        ),
    ),
    # shapes-placed-bf16 on model shapes-walls (the distance to the canvas's edges as input).
    "shapes-walls-bf16": TrainRecipe(
        model="shapes-walls",
        autoencoder=AutoencoderStage(steps=3000),
        dit=replace(PLACED_DIT_AS_GENERATED, steps=14000, start_prob=0.5, cpu_bfloat16=True),
    ),
    # shapes-walls-bf16 with its DiT compiled (DiTStage.compile): 19,000 DiT steps in the time
    # 14,000 took, as more steps of the same recipe are what moved shape (README, "What holds
    # shape and bounces back").
    "shapes-walls-compiled": TrainRecipe(
        model="shapes-walls",
        autoencoder=AutoencoderStage(steps=3000),
        dit=replace(
            PLACED_DIT_AS_GENERATED,
            steps=19000,
            start_prob=0.5,
            cpu_bfloat16=True,
            compile=True,
        ),
    ),
    # GPU recipes (README: memory and time per GPU, from benchmarks/train_cost.py). Canvases
    # of the shapes recipe's aspects at twice (S) and four times (B) the side; batch_size is
    # per micro-batch, i.e. per GPU and accumulation step.
    "S": TrainRecipe(
        model="S",
        canvases=[[192, 128], [128, 128], [128, 224], [224, 128]],
        autoencoder=AutoencoderStage(
            steps=20_000,
            batch_size=4,
            clip_frames=9,
            learning_rate=5e-4,
            warmup_steps=500,
            stats_batches=16,
        ),
        dit=DiTStage(
            steps=100_000,
            batch_size=8,
            learning_rate=2e-4,
            warmup_steps=2_000,
            ema_decay=0.9999,
            max_context_frames=4,
            pool_clips=32,
            pool_latent_frames=24,
            pool_refresh=2,
        ),
        checkpoint_every=1_000,
    ),
    "B": TrainRecipe(
        model="B",
        canvases=[[384, 256], [256, 256], [256, 448], [448, 256]],
        autoencoder=AutoencoderStage(
            steps=40_000,
            batch_size=2,
            clip_frames=9,
            learning_rate=3e-4,
            warmup_steps=1_000,
            stats_batches=32,
        ),
        dit=DiTStage(
            steps=200_000,
            batch_size=2,
            learning_rate=1e-4,
            warmup_steps=5_000,
            ema_decay=0.9999,
            max_context_frames=4,
            pool_clips=16,
            pool_latent_frames=24,
            pool_refresh=1,
            activation_checkpointing=True,  # 94 GiB without: more than an 80 GB GPU
        ),
        checkpoint_every=1_000,
    ),
    # For tests: seconds.
    "tiny": TrainRecipe(
        model="tiny",
        canvases=TINY_CANVASES,
        # Several stats batches, so latents of different canvases are pooled.
        autoencoder=TINY_AUTOENCODER,
        dit=TINY_DIT,
        distill=DistillStage(steps=2, batch_size=2),
        decoder=DecoderStage(
            steps=2, batch_size=2, clip_frames=5, emphasis={"background": {"gray": 0.5}}
        ),
        tune=replace(TINY_DIT, steps=2, image_prob=0.0, emphasis={"size": {"small": 0.8}}),
        checkpoint_every=2,
    ),
    "tiny-opening": TrainRecipe(
        model="tiny-opening",
        canvases=TINY_CANVASES,
        autoencoder=TINY_AUTOENCODER,
        dit=TINY_DIT,
        opening=replace(TINY_DIT, steps=3, image_prob=1.0, learning_rate=3e-4),
        opening_tune=replace(
            TINY_DIT, steps=2, image_prob=1.0, emphasis={"shape": {"square": 0.8}}
        ),
        checkpoint_every=2,
    ),
}


def get_recipe(name: str) -> TrainRecipe:
    if name not in RECIPES:
        raise KeyError(name)
    return copy.deepcopy(RECIPES[name])
