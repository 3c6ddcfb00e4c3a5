"""From a request (prompt, seed, resolved preset) to frames and an MP4.

A clip is made in chunks of the model's window of latent frames: the first from noise alone
(only the model's `first_frames` of them, where it has them), each later one with the last
`context_frames` latent frames made so far as clean context. Each
chunk is decoded and its frames handed on before the next is made, so memory stays flat however
long the clip. Noise for chunk i comes from a generator seeded by (seed, i): the same request
gives the same frames, bit for bit on the same machine. Progress goes to a callback; the
library never prints.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from soravid import __version__
from soravid.config import ResolvedPreset
from soravid.errors import BadInputError
from soravid.flow import denoise, guided_steps, interpolate, make_noise, time_schedule
from soravid.models.dit import ContextCache
from soravid.models.placement import random_centre
from soravid.models.registry import SoravidModel, build_model
from soravid.models.text import TextEmbedding
from soravid.motion import carry, extrapolate, motion_speed, rigidity, subject_only
from soravid.weights import (
    autocast,
    load_model,
    model_header,
    model_id,
    resolve_device,
    resolve_model_path,
)


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    seed: int
    preset: ResolvedPreset


@dataclass(frozen=True)
class ProgressEvent:
    """Where generation stands. phase is "denoise" (step of steps done in this chunk) or
    "decode" (the chunk's frames are out); chunk is 1-based; times in seconds."""

    phase: str
    chunk: int
    chunks: int
    step: int
    steps: int
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class GenerationResult:
    path: Path
    frames: int
    seconds: float
    wall_time: float
    model_id: str


ProgressCallback = Callable[[ProgressEvent], None]

# Latent frames a preset with walls measures a clip's speed on (motion.motion_speed): three
# intervals, so that the median outvotes one turn at a wall or one jump.
SPEED_FRAMES = 4

# How Pipeline.plan estimates, in words for the user.
ESTIMATE_METHOD = (
    "one chunk continuing a clip timed on this machine with the model's networks at random "
    "weights (none loaded): time = model passes x warm pass time + chunks x decode time, "
    "a step with classifier-free guidance being two passes, chunks that continue from the "
    "last motion skipping the steps above sampler.continue_from, the first chunk continuing "
    "from noise made sampler.draws times and, where chunks start warm, once more so; model "
    "loading and writing not included; peak memory = this process's peak RSS after that "
    "chunk, which chunking keeps flat however long the clip (ffmpeg's own memory not included)"
)


@dataclass(frozen=True)
class GenerationPlan:
    """What making a clip takes, worked out before making it (see Pipeline.plan)."""

    frames: int
    latent_frames: int
    latent_size: tuple[int, int]  # (height, width) of the latent grid
    chunks: int
    window_frames: int  # latent frames a chunk denoises, context included
    first_chunk_frames: int  # latent frames the first chunk makes (from noise: maybe fewer)
    context_frames: int  # clean latent frames each chunk after the first carries over
    steps: int  # sampler steps per chunk
    model_passes: int  # DiT passes in all: each chunk's steps, twice for guided ones
    estimated_seconds: float
    estimated_peak_mb: float | None  # None where the platform cannot tell peak memory
    estimate: str = ESTIMATE_METHOD


@dataclass(frozen=True)
class ChunkCost:
    step_seconds: float  # one sampler step over a full window, guided unless guidance is 1
    decode_seconds: float  # decoding one chunk's frames
    peak_bytes: int | None  # the process's peak RSS after the chunk


def peak_rss_bytes() -> int | None:
    """This process's peak resident memory so far, or None where `resource` is missing."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS bytes, Linux KiB


@dataclass(frozen=True)
class Chunk:
    """One generation window: `context` latent frames carried over, then `new` ones made."""

    index: int
    context: int
    new: int


def plan_chunks(
    latent_frames: int, window: int, context: int, first_context: int = 0, first_frames: int = 0
) -> list[Chunk]:
    """Chunks that make `latent_frames` new latent frames. The first carries `first_context`
    frames (0 when the clip starts from noise, more when it continues a given clip); from
    noise, it makes only `first_frames` of them when that is set. Each later chunk carries
    `context` frames, or as many as there are by then, and fills the window, the last perhaps
    only in part."""
    chunks: list[Chunk] = []
    made = 0
    while made < latent_frames:
        if chunks:
            carried = min(context, first_context + made)
            room = window - carried
        else:
            carried = first_context
            room = first_frames if first_frames and not first_context else window - carried
        chunks.append(Chunk(len(chunks), carried, min(room, latent_frames - made)))
        made += chunks[-1].new
    return chunks


def chunk_start(preset: ResolvedPreset, chunk: Chunk, history_frames: int) -> float:
    """The flow time a chunk's new frames start at: preset.continue_from for a chunk that
    continues frames with one more before its context (a motion to go on), else 1 (noise)."""
    warm = chunk.context and history_frames > chunk.context and preset.continue_from < 1
    return preset.continue_from if warm else 1.0


# chunk_seed's stream for a new clip's placement, apart from every chunk's noise.
PLACEMENT_STREAM = 2**32


def chunk_draws(preset: ResolvedPreset, chunks: list[Chunk], chunk: Chunk, start: float) -> int:
    """How many times `chunk` is made (sampler.draws, the most rigid kept): that many for the
    first chunk that continues frames, when it starts from noise (a new clip's chunk after its
    opening, with no motion to carry on); once for every other."""
    first_continuing = next((c for c in chunks if c.context), None)
    return preset.draws if chunk == first_continuing and start == 1 else 1


def remakes_from_its_motion(preset: ResolvedPreset, chunk: Chunk, start: float) -> bool:
    """Whether `chunk`, made from noise though it continues frames (it has no motion to go on
    yet), is made a second time, warm from the reference carried on by the motion it made:
    wherever chunks start warm (continue_from < 1)."""
    return bool(chunk.context) and start == 1 and preset.continue_from < 1


def chunk_seed(seed: int, chunk: int, draw: int = 0) -> int:
    """A well-mixed 63-bit seed for one chunk's noise (draw > 0: another draw of it)."""
    entropy = [seed, chunk, draw] if draw else [seed, chunk]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def to_uint8_frames(video: Tensor) -> np.ndarray:
    """(1, 3, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8."""
    pixels = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(pixels[0], "c t h w -> t h w c").cpu().numpy()


def from_uint8_frames(frames: np.ndarray) -> Tensor:
    """(T, H, W, 3) uint8 -> (1, 3, T, H, W) in [-1, 1]: the inverse of to_uint8_frames."""
    return rearrange(torch.from_numpy(frames), "t h w c -> 1 c t h w").float() / 127.5 - 1


def split_guidance(model: SoravidModel, guidance: float) -> tuple[float | None, float]:
    """A guidance scale as (what the DiT is given in its one pass, what denoise applies in two
    passes, prompt and empty caption): a model distilled from its classifier-free guidance
    (DiTConfig.guidance_embedding) takes the scale itself, any other model gets two passes."""
    if model.config.dit.guidance_embedding:
        return guidance, 1.0
    return None, guidance


def prompt_velocity(
    model: SoravidModel,
    text: TextEmbedding,
    context_frames: int = 0,
    guidance: float | None = None,
    guidance_until: float = 0.0,
    placement: Tensor | None = None,
    opening: bool = False,
) -> Callable[[Tensor, Tensor], Tensor]:
    """The flow velocity conditioned on `text`, the prompts first and, for classifier-free
    guidance, as many empty captions after them: guided steps batch x twice and take both, the
    others the prompts alone (one prompt when generating; the decoder stage estimates a
    batch). A model distilled from its guidance (DiTConfig.guidance_embedding) is
    given the scale instead, `guidance`, and 1 at steps from flow time guidance_until down.
    `placement` (1, 1, T, h, w), for a new clip of a DiT with placement, goes with every row.
    `opening`: x is a new clip's first frames (SoravidModel.velocity).

    The first `context_frames` latent frames of x are the chunk's context, the same at every
    call (denoise holds them). A DiT with causal_context runs them once per batch size and
    scale, then only the frames being made; their velocity, which denoise ignores, is zero."""

    def inputs(x: Tensor, t: Tensor) -> tuple[TextEmbedding, Tensor | None]:
        conditioning = text if len(x) == len(text.mask) else text.first(len(x))
        if guidance is None:
            return conditioning, None
        scale = guidance if float(t[0, -1]) > guidance_until else 1.0  # the step's flow time
        return conditioning, torch.full((len(x),), scale, device=x.device)

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        conditioning, scale = inputs(x, t)
        where = None if placement is None else placement.expand(len(x), -1, -1, -1, -1)
        return model.velocity(x, t, conditioning, context_frames, scale, where, opening)

    if not (context_frames and model.config.dit.causal_context):
        return velocity
    caches: dict[tuple[int, float | None], ContextCache] = {}

    def velocity_after_context(x: Tensor, t: Tensor) -> Tensor:
        conditioning, scale = inputs(x, t)
        key = (len(x), None if scale is None else float(scale[0]))
        if key not in caches:
            context, context_t = x[:, :, :context_frames], t[:, :context_frames]
            caches[key] = model.cache_context(context, context_t, conditioning, scale)
        made, made_t = x[:, :, context_frames:], t[:, context_frames:]
        new = model.velocity_after(caches[key], made, made_t, conditioning, scale)
        return torch.cat([torch.zeros_like(x[:, :, :context_frames]), new], dim=2)

    return velocity_after_context


class ProgressClock:
    """Turns (chunk, step) positions into ProgressEvents with elapsed time and an ETA."""

    def __init__(self, callback: ProgressCallback | None, chunks: int, steps: int) -> None:
        self.callback, self.chunks, self.steps = callback, chunks, steps
        self.start = time.perf_counter()

    def report(self, phase: str, chunk: int, step: int) -> None:
        if self.callback is None:
            return
        elapsed = time.perf_counter() - self.start
        total = self.chunks * (self.steps + 1)  # each chunk: its steps, then its decode
        done = (chunk - 1) * (self.steps + 1) + step + (phase == "decode")
        eta = elapsed / done * (total - done) if done else None
        event = ProgressEvent(phase, chunk, self.chunks, step, self.steps, elapsed, eta)
        self.callback(event)


class Pipeline:
    """A loaded model, ready to turn requests into frames and MP4 files."""

    def __init__(self, model: SoravidModel, model_id: str, device: torch.device) -> None:
        self.model = model.eval()
        self.model_id = model_id
        self.device = device

    @classmethod
    def load(cls, model: str = "embedded", device: str = "auto") -> Pipeline:
        """Load the embedded model or a .safetensors file on a device (auto|cpu|cuda|mps)."""
        path = resolve_model_path(model)
        target = resolve_device(device)
        return cls(load_model(path, target), model_id(path), target)

    @classmethod
    def from_header(cls, model: str = "embedded", device: str = "auto") -> Pipeline:
        """The networks a model file describes, at random weights (its tensors are not read):
        enough to plan and time generation, not to make video worth watching."""
        path = resolve_model_path(model)
        config, vocabulary = model_header(path)
        target = resolve_device(device)
        return cls(build_model(config, vocabulary).to(target), model_id(path), target)

    def unknown_words(self, prompt: str) -> list[str]:
        """Words of the prompt the model's vocabulary does not have (it ignores them)."""
        return self.model.tokenizer.unknown_words(prompt)

    def check_canvas(self, preset: ResolvedPreset) -> None:
        """BadInputError unless width and height fit the model's latent patches."""
        sf, (_, ph, pw) = self.model.config.autoencoder.spatial_factor, self.model.config.dit.patch
        sides = (("width", preset.width, sf * pw), ("height", preset.height, sf * ph))
        for side, value, multiple in sides:
            if value % multiple:
                raise BadInputError(
                    f"{side} {value} is not a multiple of {multiple}, "
                    f"which model {self.model_id} needs"
                )

    def frames(
        self,
        request: GenerationRequest,
        on_progress: ProgressCallback | None = None,
        context: Tensor | None = None,
    ) -> Iterator[np.ndarray]:
        """The clip's frames, uint8 (H, W, 3), streamed chunk by chunk; exactly preset.frames.

        With `context` (from `encode_context`) the clip continues that one: the frames are
        only the new ones, following on from its last frame.
        """
        self._check_request(request)
        history = self._empty_latent(request.preset)
        if context is not None:
            if context.shape[:2] + context.shape[3:] != history.shape[:2] + history.shape[3:]:
                raise ValueError(f"context {tuple(context.shape)} does not fit the canvas")
            history = context.to(self.device)
        return self._frames(request, on_progress, history)

    def encode_context(self, frames: Sequence[np.ndarray]) -> Tensor:
        """The latent (1, C, Tl, h, w) of a clip's last frames, uint8 (H, W, 3) each, to continue
        it with `frames(..., context=...)`. H and W must fit the model (see check_canvas)."""
        if not frames:
            raise BadInputError("there are no frames to continue")
        tf = self.model.config.autoencoder.temporal_factor
        count = min(self.context_span(), 1 + (len(frames) - 1) // tf * tf)  # encoder: 1 mod tf
        video = from_uint8_frames(np.stack(frames[len(frames) - count :]))
        with torch.inference_mode(), autocast(self.device):
            return self.model.autoencoder.encode(video.to(self.device)).float()

    def context_span(self) -> int:
        """How many of a clip's last frames `encode_context` encodes, at most: what the model
        and decoder look at, or what a preset with walls measures the clip's speed on."""
        tf = self.model.config.autoencoder.temporal_factor
        return 1 + (max(self._history_frames(), SPEED_FRAMES) - 1) * tf

    def _kept_frames(self, preset: ResolvedPreset) -> int:
        """Latent frames carried from chunk to chunk: the context and, to continue from the
        last motion, the frame before it (with walls, what the clip's speed is measured on)."""
        kept = self.model.config.context_frames + (preset.continue_from < 1)
        return max(kept, SPEED_FRAMES) if preset.walls else kept

    def _history_frames(self) -> int:
        """Latent frames kept from chunk to chunk: the context, and what the decoder looks at."""
        return max(self.model.config.context_frames, self.model.autoencoder.decoder.history)

    def plan(self, request: GenerationRequest) -> GenerationPlan:
        """The chunks that would make this clip from noise, with the time and peak memory they
        are estimated to take (ESTIMATE_METHOD says how; it runs one chunk to measure)."""
        self._check_request(request)
        preset, config = request.preset, self.model.config
        chunks = self._plan(preset.frames, 0)
        cost = self.measure_chunk_cost(request)
        _, two_pass = split_guidance(self.model, preset.guidance)

        def passes_from(start: float) -> int:
            """A chunk's model passes when it starts at flow time `start`."""
            schedule = time_schedule(preset.steps, config.schedule_shift, start)
            return len(schedule) - 1 + guided_steps(schedule, two_pass, preset.guidance_until)

        passes, made = 0, 0
        for chunk in chunks:
            start = chunk_start(preset, chunk, min(made, self._kept_frames(preset)))
            passes += chunk_draws(preset, chunks, chunk, start) * passes_from(start)
            if remakes_from_its_motion(preset, chunk, start):
                passes += passes_from(preset.continue_from)
            made += chunk.new
        pass_seconds = cost.step_seconds / (1 if two_pass == 1.0 else 2)
        peak = cost.peak_bytes
        return GenerationPlan(
            frames=preset.frames,
            latent_frames=sum(chunk.new for chunk in chunks),
            latent_size=tuple(self._empty_latent(preset).shape[3:]),
            chunks=len(chunks),
            window_frames=config.window_frames,
            first_chunk_frames=chunks[0].new,
            context_frames=config.context_frames,
            steps=preset.steps,
            model_passes=passes,
            estimated_seconds=passes * pass_seconds + len(chunks) * cost.decode_seconds,
            estimated_peak_mb=None if peak is None else peak / 2**20,
        )

    def measure_chunk_cost(self, request: GenerationRequest) -> ChunkCost:
        """Make one chunk of the request's canvas that continues a clip (of zeros), as every
        chunk but the first does, with two sampler steps: the second (warm) step and the
        decode are timed."""
        preset, config = request.preset, self.model.config
        new_frames = config.window_frames - config.context_frames
        frames = new_frames * config.autoencoder.temporal_factor
        one_chunk = replace(
            preset, seconds=frames / preset.fps, steps=2, guidance_until=0.0, continue_from=1.0
        )
        empty = self._empty_latent(preset)
        context = empty.new_zeros(empty.shape[:2] + (self._history_frames(),) + empty.shape[3:])
        elapsed: dict[tuple[str, int], float] = {}

        def record(event: ProgressEvent) -> None:
            elapsed[event.phase, event.step] = event.elapsed

        calibration = replace(request, preset=one_chunk)
        for _ in self.frames(calibration, on_progress=record, context=context):
            pass
        step = elapsed["denoise", 2] - elapsed["denoise", 1]
        decode = elapsed["decode", 2] - elapsed["denoise", 2]
        return ChunkCost(step, decode, peak_rss_bytes())

    def generate(
        self,
        request: GenerationRequest,
        output: Path,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """Write the clip to `output` (MP4 with the recipe in its metadata)."""
        from soravid.video import VideoWriter

        start, preset = time.perf_counter(), request.preset
        frames = self.frames(request, on_progress)
        recipe = self.recipe(request)
        size = (preset.width, preset.height)
        with VideoWriter(output, *size, preset.fps, recipe, overwrite=overwrite) as writer:
            for frame in frames:
                writer.write(frame)
        written = writer.frames_written
        return GenerationResult(
            Path(output), written, written / preset.fps, time.perf_counter() - start, self.model_id
        )

    def recipe(self, request: GenerationRequest) -> dict:
        """What the MP4's metadata records: enough to make the same clip again."""
        return {
            "prompt": request.prompt,
            "seed": request.seed,
            "preset": asdict(request.preset),
            "model": self.model_id,
            "soravid": __version__,
        }

    def _frames(
        self, request: GenerationRequest, on_progress: ProgressCallback | None, history: Tensor
    ) -> Iterator[np.ndarray]:
        preset = request.preset
        chunks = self._plan(preset.frames, history.shape[2])
        clock = ProgressClock(on_progress, len(chunks), preset.steps)
        autoencoder, keep = self.model.autoencoder, self._kept_frames(preset)
        with torch.inference_mode(), autocast(self.device):
            text = self._text(request.prompt, preset.guidance)
            # A clip from noise opens with the opening networks' own text embedding; a clip
            # being continued, or a model without them, has no use for another.
            opening_text = text
            if self.model.config.opening_dit and not history.shape[2]:
                opening_text = self._text(request.prompt, preset.guidance, opening=True)
            decode_cache = autoencoder.decode_cache(history)
            # What warm-started chunks go on from (motion.carry): the last frame of a clip
            # being continued, else the clip's first latent frame, made alone from noise.
            reference = history[:, :, -1] if history.shape[2] else None
            # A new clip of one subject (single_subject): every latent frame made is cleared
            # of all but it, the opening and each chunk after; a clip being continued may hold
            # more than one thing, and keeps whatever its frames carry on.
            one_subject = preset.single_subject and reference is None
            speed = None  # with walls, the clip's speed, from the frames before the first guess
            remaining = preset.frames
            for chunk in chunks:
                chunk_text = text if chunk.context else opening_text
                start = chunk_start(preset, chunk, history.shape[2])
                if preset.walls and start < 1 and speed is None:
                    speed = motion_speed(history)
                make_chunk = partial(
                    self._denoise_chunk,
                    chunk,
                    history,
                    reference,
                    text=chunk_text,
                    request=request,
                    clock=clock,
                )
                new, speed = self._chosen_chunk(
                    make_chunk, preset, chunks, chunk, history, start, speed
                )
                if one_subject:
                    new = torch.stack([subject_only(frame) for frame in new.unbind(2)], dim=2)
                if reference is None:
                    reference = new[:, :, 0]
                video = autoencoder.decode(new, decode_cache)
                history = torch.cat([history, new], dim=2)[:, :, -keep:]
                clock.report("decode", chunk.index + 1, preset.steps)
                frames = to_uint8_frames(video[:, :, :remaining])
                remaining -= len(frames)
                yield from frames

    def _chosen_chunk(
        self,
        make_chunk: Callable[..., Tensor],
        preset: ResolvedPreset,
        chunks: list[Chunk],
        chunk: Chunk,
        history: Tensor,
        start: float,
        speed: Tensor | None,
    ) -> tuple[Tensor, Tensor | None]:
        """The chunk's new latent frames and, with walls, the clip's speed after them.

        Of several draws (chunk_draws), the one whose frames best carry the last frame before
        them on, as shifts. A chunk made from noise right after a new clip's opening chose how
        the subject moves, and often jumped it away from the frame before; made again from the
        reference carried on by that motion, as every later chunk is, it moves from where it
        was (remakes_from_its_motion)."""
        draws = chunk_draws(preset, chunks, chunk, start)
        made = [make_chunk(speed, draw=draw, start=start) for draw in range(draws)]
        new = made[0]
        if draws > 1:
            new = max(made, key=lambda m: rigidity(torch.cat([history[:, :, -1:], m], 2)))
        if not remakes_from_its_motion(preset, chunk, start):
            return new, speed
        motion = torch.cat([history, new], dim=2)
        if preset.walls:
            speed = motion_speed(motion)
        return make_chunk(speed, start=preset.continue_from, motion=motion), speed

    def _plan(self, frames: int, given_latent_frames: int) -> list[Chunk]:
        """A clip from noise needs 1 + ceil((frames-1)/tf) latent frames (the first decodes to
        one frame); a continuation ceil(frames/tf), each decoding to tf frames."""
        config, tf = self.model.config, self.model.config.autoencoder.temporal_factor
        if given_latent_frames:
            latent_frames = math.ceil(frames / tf)
        else:
            latent_frames = 1 + math.ceil((frames - 1) / tf)
        first_context = min(config.context_frames, given_latent_frames)
        return plan_chunks(
            latent_frames,
            config.window_frames,
            config.context_frames,
            first_context,
            config.first_frames,
        )

    def _denoise_chunk(
        self,
        chunk: Chunk,
        history: Tensor,
        reference: Tensor | None,
        speed: Tensor | None,
        text: TextEmbedding,
        request: GenerationRequest,
        clock: ProgressClock,
        draw: int = 0,
        *,
        start: float,
        motion: Tensor | None = None,
    ) -> Tensor:
        """The chunk's new latent frames (1, C, new, h, w), from the noise of its `draw`, at
        flow time `start` (below 1: warm, going on by the motion of `motion`'s last frames,
        by default the history's)."""
        _, channels, _, height, width = history.shape
        shape = (1, channels, chunk.context + chunk.new, height, width)
        noise = make_noise(shape, chunk_seed(request.seed, chunk.index, draw)).to(self.device)
        context = history[:, :, history.shape[2] - chunk.context :] if chunk.context else None
        preset = request.preset
        if start < 1:
            # The chunk goes on from the reference where the subject is now, as its last context
            # frame too: the model's own last frame would carry its artefacts on.
            held = carry(reference, history[:, :, -1])  # (1, C, h, w)
            context = torch.cat([context[:, :, :-1], held[:, :, None]], dim=2)
            motion = history if motion is None else motion
            guess = extrapolate(motion, chunk.new, held, speed)  # (1, C, new, h, w)
            guess = guess.to(noise.dtype)
            fresh = noise[:, :, chunk.context :]  # the new frames' noise
            noise[:, :, chunk.context :] = interpolate(guess, fresh, start)
        schedule = time_schedule(preset.steps, self.model.config.schedule_shift, start)
        skipped = preset.steps - (len(schedule) - 1)  # progress counts them as done
        one_pass, two_pass = split_guidance(self.model, preset.guidance)
        placement = self._placement(chunk, request, shape)
        velocity = prompt_velocity(
            self.model,
            text,
            chunk.context,
            one_pass,
            preset.guidance_until,
            placement,
            opening=not chunk.context,
        )
        latent = denoise(
            velocity,
            noise,
            context,
            chunk.context,
            schedule,
            guidance=two_pass,
            on_step=lambda step, _: clock.report("denoise", chunk.index + 1, skipped + step),
            context_time=self.model.config.context_time,
            guidance_until=preset.guidance_until,
        )
        return latent[:, :, chunk.context :].float()

    def _placement(
        self, chunk: Chunk, request: GenerationRequest, shape: tuple[int, ...]
    ) -> Tensor | None:
        """For a DiT with placement, where the subject of a clip made from noise starts, drawn
        from the seed, as a map (1, 1, T, h, w) on the chunk's first latent frame; None for a
        chunk that continues frames (its context says where the subject is)."""
        if chunk.context:
            return None
        preset, margin = request.preset, self.model.config.placement_margin
        rng = np.random.default_rng(chunk_seed(request.seed, PLACEMENT_STREAM))
        centre = random_centre(rng, preset.width, preset.height, margin)
        return self.model.placement(torch.tensor([centre]), shape[3:], shape[2])

    def _text(self, prompt: str, guidance: float, opening: bool = False) -> TextEmbedding:
        """The prompt's embedding (for a new clip's opening with `opening`); with
        classifier-free guidance, batched with the empty caption after it."""
        _, two_pass = split_guidance(self.model, guidance)
        prompts = [prompt, ""] if two_pass != 1.0 else [prompt]
        return self.model.encode_text(prompts, opening)

    def _empty_latent(self, preset: ResolvedPreset) -> Tensor:
        config = self.model.config.autoencoder
        sf = config.spatial_factor
        shape = (1, config.latent_channels, 0, preset.height // sf, preset.width // sf)
        return torch.zeros(shape, device=self.device)

    def _check_request(self, request: GenerationRequest) -> None:
        self.check_canvas(request.preset)
        if request.seed < 0:
            raise BadInputError(f"seed must be 0 or more, got {request.seed}")
