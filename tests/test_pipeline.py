"""The pipeline: chunk plans, exact frame counts, determinism by seed, streaming, progress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from soravid import weights as weights_module
from soravid.config import ResolvedPreset
from soravid.errors import BadInputError
from soravid.motion import carry, rigidity, subject_only
from soravid.pipeline import (
    Chunk,
    GenerationRequest,
    Pipeline,
    ProgressEvent,
    chunk_seed,
    plan_chunks,
    prompt_velocity,
)
from soravid.video import probe_video, read_frames
from tests.conftest import make_tiny_model


def preset(seconds: float = 1.0, width: int = 32, height: int = 24, **values) -> ResolvedPreset:
    settings = dict(fps=8, model="tiny", steps=2, guidance=3.0) | values
    return ResolvedPreset("test", seconds, width=width, height=height, **settings)


def request(seed: int = 0, **values) -> GenerationRequest:
    return GenerationRequest("a red circle moving left", seed, preset(**values))


@pytest.fixture
def pipeline(tiny_model_path: Path) -> Pipeline:
    return Pipeline.load(str(tiny_model_path), device="cpu")


def test_chunks_cover_the_latent_frames_with_context() -> None:
    assert plan_chunks(2, window=3, context=1) == [Chunk(0, 0, 2)]
    assert plan_chunks(8, window=3, context=1) == [
        Chunk(0, 0, 3),
        Chunk(1, 1, 2),
        Chunk(2, 1, 2),
        Chunk(3, 1, 1),
    ]
    assert sum(chunk.new for chunk in plan_chunks(101, window=11, context=3)) == 101
    continuing = plan_chunks(5, window=3, context=2, first_context=1)
    assert continuing == [Chunk(0, 1, 2), Chunk(1, 2, 1), Chunk(2, 2, 1), Chunk(3, 2, 1)]


def test_a_clip_from_noise_opens_with_first_frames_alone() -> None:
    opening = plan_chunks(8, window=4, context=2, first_frames=1)
    assert opening == [Chunk(0, 0, 1), Chunk(1, 1, 3), Chunk(2, 2, 2), Chunk(3, 2, 2)]
    assert plan_chunks(1, window=4, context=2, first_frames=1) == [Chunk(0, 0, 1)]
    # A continuation has its context from the start: first_frames does not apply.
    continuing = plan_chunks(4, window=4, context=2, first_context=2, first_frames=1)
    assert continuing == [Chunk(0, 2, 2), Chunk(1, 2, 2)]


def test_chunk_seeds_differ_by_seed_and_chunk() -> None:
    seeds = {chunk_seed(seed, chunk) for seed in range(3) for chunk in range(3)}
    assert len(seeds) == 9
    assert chunk_seed(5, 2) == chunk_seed(5, 2)


@pytest.mark.parametrize(("seconds", "frames"), [(0.125, 1), (0.5, 4), (1.0, 8), (2.25, 18)])
def test_frames_are_exactly_the_preset_count(pipeline: Pipeline, seconds, frames) -> None:
    clip = list(pipeline.frames(request(seconds=seconds)))
    assert len(clip) == frames
    assert all(f.shape == (24, 32, 3) and f.dtype == np.uint8 for f in clip)


def test_other_aspects_work(pipeline: Pipeline) -> None:
    clip = list(pipeline.frames(request(seconds=0.5, width=16, height=40)))
    assert [f.shape for f in clip] == [(40, 16, 3)] * 4


def test_same_seed_same_bits_other_seed_other_frames(pipeline: Pipeline) -> None:
    first = np.stack(list(pipeline.frames(request(seed=3, seconds=1.5))))
    again = np.stack(list(pipeline.frames(request(seed=3, seconds=1.5))))
    other = np.stack(list(pipeline.frames(request(seed=4, seconds=1.5))))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_guidance_off_runs_one_batch_and_changes_the_result(pipeline: Pipeline) -> None:
    guided = np.stack(list(pipeline.frames(request(seconds=0.5))))
    plain = np.stack(list(pipeline.frames(request(seconds=0.5, guidance=1.0))))
    assert guided.shape == plain.shape and not np.array_equal(guided, plain)


def test_frames_stream_before_later_chunks_are_made(pipeline: Pipeline) -> None:
    events: list[ProgressEvent] = []
    frames = pipeline.frames(request(seconds=2.0), on_progress=events.append)
    next(frames)
    assert {event.chunk for event in events} == {1}
    rest = list(frames)
    assert len(rest) == 15
    assert events[-1].chunk == events[-1].chunks > 1


def test_progress_events_count_steps_and_chunks(pipeline: Pipeline) -> None:
    events: list[ProgressEvent] = []
    list(pipeline.frames(request(seconds=2.0, steps=3), on_progress=events.append))
    chunks = events[0].chunks
    assert [(e.phase, e.step) for e in events[:4]] == [
        ("denoise", 1),
        ("denoise", 2),
        ("denoise", 3),
        ("decode", 3),
    ]
    assert len(events) == chunks * 4 and all(e.steps == 3 for e in events)
    assert [e.elapsed for e in events] == sorted(e.elapsed for e in events)
    assert events[-1].eta == 0 and all(e.eta is not None and e.eta >= 0 for e in events)


def test_canvas_must_fit_the_patches(pipeline: Pipeline) -> None:
    with pytest.raises(BadInputError, match="width 36 is not a multiple of 8"):
        pipeline.check_canvas(preset(width=36))
    with pytest.raises(BadInputError, match="height 20"):
        pipeline.frames(request(height=20))


def test_negative_seed_is_refused(pipeline: Pipeline) -> None:
    with pytest.raises(BadInputError, match="seed must be 0 or more"):
        pipeline.frames(request(seed=-1))


def test_unknown_words_come_from_the_vocabulary(pipeline: Pipeline) -> None:
    assert pipeline.unknown_words("a red Ball on a purple background") == ["ball", "purple"]


def test_missing_embedded_model_says_to_pass_a_model(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(weights_module, "embedded_model_path", lambda: tmp_path / "none")
    with pytest.raises(BadInputError, match="no embedded model is bundled in this build"):
        Pipeline.load("embedded")


def test_generate_writes_the_clip_with_its_recipe(pipeline: Pipeline, tmp_path: Path) -> None:
    output = tmp_path / "clip.mp4"
    result = pipeline.generate(request(seed=9, seconds=1.25), output)
    info = probe_video(output)
    assert (result.path, result.frames, result.seconds) == (output, 10, 1.25)
    assert (info.frames, info.width, info.height, info.fps) == (10, 32, 24, 8)
    assert info.metadata["seed"] == 9 and info.metadata["model"] == pipeline.model_id
    assert info.metadata["preset"]["steps"] == 2
    assert len(list(read_frames(output))) == 10
    with pytest.raises(BadInputError, match="exists"):
        pipeline.generate(request(), output)


def test_a_clip_can_be_continued_from_its_encoded_tail(pipeline: Pipeline) -> None:
    clip = list(pipeline.frames(request(seconds=1.0)))
    context = pipeline.encode_context(clip)
    keep = max(pipeline.model.config.context_frames, pipeline.model.autoencoder.decoder.history)
    assert context.shape == (1, 4, min(keep, 2), 6, 8)  # 8 frames: their last 5 -> 2 latents
    continued = list(pipeline.frames(request(seconds=0.75), context=context))
    assert len(continued) == 6 and continued[0].shape == (24, 32, 3)
    again = list(pipeline.frames(request(seconds=0.75), context=context))
    assert all(np.array_equal(a, b) for a, b in zip(continued, again, strict=True))
    other = pipeline.encode_context([255 - frame for frame in clip])
    elsewhere = list(pipeline.frames(request(seconds=0.75), context=other))
    assert not all(np.array_equal(a, b) for a, b in zip(continued, elsewhere, strict=True))


def test_context_must_fit_the_canvas(pipeline: Pipeline) -> None:
    context = pipeline.encode_context(list(pipeline.frames(request(seconds=0.5))))
    with pytest.raises(ValueError, match="does not fit the canvas"):
        pipeline.frames(request(width=16), context=context)
    with pytest.raises(BadInputError, match="no frames to continue"):
        pipeline.encode_context([])


def record_model_calls(model) -> list[tuple]:
    """Wrap the model's velocity calls: each appends (kind, batch, texts, guidance scale)."""
    calls = []
    velocity, velocity_after, cache_context = (
        model.velocity,
        model.velocity_after,
        model.cache_context,
    )

    def scale(guidance):
        return None if guidance is None else float(guidance[0])

    def counted(x, t, text, context_frames=0, guidance=None, placement=None, opening=False):
        calls.append(("whole", len(x), len(text.mask), scale(guidance)))
        return velocity(x, t, text, context_frames, guidance, placement, opening)

    def counted_after(cache, x, t, text, guidance=None):
        calls.append(("after", len(x), len(text.mask), scale(guidance)))
        return velocity_after(cache, x, t, text, guidance)

    def counted_cache(context, t, text, guidance=None):
        calls.append(("cache", len(context), len(text.mask), scale(guidance)))
        return cache_context(context, t, text, guidance)

    model.velocity, model.velocity_after, model.cache_context = (
        counted,
        counted_after,
        counted_cache,
    )
    return calls


def test_guidance_until_leaves_the_last_steps_to_one_pass() -> None:
    """With 4 steps and guidance until t=0.5 (no shift: times 1, .75, .5, .25), each chunk's
    first two steps see the prompt and the empty caption together, the last two the prompt.
    Two chunks: the tiny model makes the first latent frame alone, then the second after its
    cached context (computed once for each batch size)."""
    model = make_tiny_model(guidance_embedding=False)
    model.config.schedule_shift = 1.0
    calls = record_model_calls(model)
    pipeline = Pipeline(model, "tiny@test", torch.device("cpu"))
    list(pipeline.frames(request(seconds=0.5, steps=4, guidance_until=0.5)))
    guided, unguided = [(2, 2, None)] * 2, [(1, 1, None)] * 2
    assert calls == [("whole", *b) for b in guided + unguided] + [
        ("cache", 2, 2, None),
        ("after", 2, 2, None),
        ("after", 2, 2, None),
        ("cache", 1, 1, None),
        ("after", 1, 1, None),
        ("after", 1, 1, None),
    ]


def test_a_distilled_model_is_given_the_scale_in_one_pass(pipeline: Pipeline) -> None:
    """A DiT distilled from its guidance sees the prompt alone, told the scale (1 once
    guidance_until is reached); its cached context is computed once for each scale."""
    model = pipeline.model
    assert model.config.dit.guidance_embedding
    model.config.schedule_shift = 1.0
    calls = record_model_calls(model)
    list(pipeline.frames(request(seconds=0.5, steps=4, guidance=3.0, guidance_until=0.5)))
    assert calls == [("whole", 1, 1, scale) for scale in (3.0, 3.0, 1.0, 1.0)] + [
        ("cache", 1, 1, 3.0),
        ("after", 1, 1, 3.0),
        ("after", 1, 1, 3.0),
        ("cache", 1, 1, 1.0),
        ("after", 1, 1, 1.0),
        ("after", 1, 1, 1.0),
    ]
    plan = pipeline.plan(request(seconds=0.5, steps=4, guidance=3.0))
    assert plan.model_passes == plan.chunks * 4  # one pass a step, guided or not


def test_cached_context_velocity_is_the_whole_windows(pipeline: Pipeline) -> None:
    """A causal-context model runs a chunk's context once; the velocity of the frames being
    made is what the whole window would give, at every step and for either batch size."""
    model = pipeline.model
    assert model.config.dit.causal_context
    text = model.encode_text(["a red circle", ""])
    velocity = prompt_velocity(model, text, context_frames=1)
    x = torch.randn(2, model.config.dit.latent_channels, 3, 6, 8)
    with torch.inference_mode():
        for t_made, batch in ((0.9, 2), (0.5, 2), (0.2, 1)):
            t = torch.full((batch, 3), t_made)
            t[:, 0] = 0.05
            expected = model.velocity(x[:batch], t, text.first(batch), 1)[:, :, 1:]
            got = velocity(x[:batch], t)[:, :, 1:]
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_a_new_clip_opens_where_its_seed_places_the_subject() -> None:
    """A DiT with placement gets a map on a new clip's first chunk only: one bump, at least the
    margin from every edge, drawn from the seed, for every row of a guided batch."""
    model = make_tiny_model(guidance_embedding=False)  # guided: the prompt and the empty caption
    assert model.config.dit.placement
    maps = []
    velocity = model.velocity

    def recorded(x, t, text, context_frames=0, guidance=None, placement=None, opening=False):
        maps.append(placement)
        return velocity(x, t, text, context_frames, guidance, placement, opening)

    model.velocity = recorded
    pipeline = Pipeline(model, "tiny@test", torch.device("cpu"))
    list(pipeline.frames(request(seed=3, seconds=0.5, steps=2, width=48, height=32)))
    first = maps[0]
    assert first.shape == (2, 1, 1, 8, 12)  # prompt and empty caption, 1 frame, 4-px cells
    assert torch.equal(first[0], first[1]) and maps[1] is not None
    assert all(placement is None for placement in maps[2:])  # chunks that continue
    row, column = divmod(int(first[0].argmax()), 12)
    margin = model.config.placement_margin * 32 / 4  # in cells
    assert margin - 1 <= row <= 8 - margin and margin - 1 <= column <= 12 - margin
    maps.clear()
    list(pipeline.frames(request(seed=3, seconds=0.5, steps=2, width=48, height=32)))
    assert torch.equal(maps[0], first)
    maps.clear()
    list(pipeline.frames(request(seed=4, seconds=0.5, steps=2, width=48, height=32)))
    assert not torch.equal(maps[0], first)


def test_continuing_from_the_last_motion_starts_part_noised(pipeline: Pipeline) -> None:
    """With continue_from, chunks that continue frames skip the steps above it: the one after
    the opening, with no motion to go on yet, is made from noise and then again from the
    motion it made; the opening comes out as before, everything after otherwise; progress
    and the plan count what runs."""
    events: list[ProgressEvent] = []
    warm = request(seconds=2.0, steps=4, continue_from=0.6)
    clip = list(pipeline.frames(warm, on_progress=events.append))
    cold = list(pipeline.frames(request(seconds=2.0, steps=4)))
    assert len(clip) == len(cold) == 16
    assert np.array_equal(clip[0], cold[0])  # the opening frame
    assert not np.array_equal(np.stack(clip[1:]), np.stack(cold[1:]))
    assert np.array_equal(np.stack(clip), np.stack(list(pipeline.frames(warm))))
    steps = [[e.step for e in events if e.chunk == c and e.phase == "denoise"] for c in (1, 2, 3)]
    assert steps[0] == [1, 2, 3, 4]
    warm_steps = steps[2]
    assert warm_steps[0] > 1 and warm_steps[-1] == 4  # started part-way, counted as done
    assert steps[1] == [1, 2, 3, 4, *warm_steps]  # from noise, then again warm
    denoise_steps = sum(e.phase == "denoise" for e in events)
    assert pipeline.plan(warm).model_passes == denoise_steps  # one pass a step: distilled


def test_the_plan_counts_every_draw_of_the_chunk_made_more_than_once(pipeline: Pipeline) -> None:
    events: list[ProgressEvent] = []
    drawn = request(seconds=2.0, steps=4, continue_from=0.6, draws=3)
    list(pipeline.frames(drawn, on_progress=events.append))
    denoise_steps = sum(e.phase == "denoise" for e in events)
    assert pipeline.plan(drawn).model_passes == denoise_steps  # one pass a step: distilled
    once = request(seconds=2.0, steps=4, continue_from=0.6)
    assert pipeline.plan(drawn).model_passes == pipeline.plan(once).model_passes + 2 * 4


def test_continuing_chunks_go_on_from_the_opening_or_the_last_given_frame(
    pipeline: Pipeline, monkeypatch
) -> None:
    """A warm-started chunk goes on from a clean frame (motion.carry): a new clip's opening
    latent frame, or the last frame of the clip being continued, carried to where the subject
    is, as its context and as its start; never the model's latest output."""
    import soravid.pipeline as pipeline_module

    made, lasts, references, contexts = [], [], [], []
    denoise_chunk, carry_reference = Pipeline._denoise_chunk, pipeline_module.carry
    denoise = pipeline_module.denoise

    def record_chunk(self, chunk, history, *args, **kwargs):
        lasts.append(history[:, :, -1].clone() if history.shape[2] else None)  # last shown
        made.append(denoise_chunk(self, chunk, history, *args, **kwargs))
        return made[-1]

    def record_reference(reference, last):
        references.append(reference.clone())
        return carry_reference(reference, last)

    def record_context(velocity, noise, context, *args, **kwargs):
        contexts.append(None if context is None else context.clone())
        return denoise(velocity, noise, context, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_denoise_chunk", record_chunk)
    monkeypatch.setattr(pipeline_module, "carry", record_reference)
    monkeypatch.setattr(pipeline_module, "denoise", record_context)
    clip = list(pipeline.frames(request(seconds=3.0, steps=2, continue_from=0.6)))
    opening = made[0][:, :, 0]
    assert len(references) >= 3  # the chunk after the opening made again, chunks 3 and on
    assert all(torch.equal(r, opening) for r in references)
    warm = range(len(made) - len(references), len(made))
    for chunk in warm:
        expected = carry(opening, lasts[chunk])
        assert torch.equal(contexts[chunk][:, :, -1], expected)
        if chunk > warm[0]:  # the first is the opening itself
            assert not torch.equal(contexts[chunk][:, :, -1], lasts[chunk])

    references.clear()
    context = pipeline.encode_context(clip)
    list(pipeline.frames(request(seconds=2.0, steps=2, continue_from=0.6), context=context))
    assert references and all(torch.equal(r, context[:, :, -1]) for r in references)


def test_a_single_subject_clip_is_cleared_frame_by_frame_before_it_is_shown_and_carried(
    pipeline: Pipeline, monkeypatch
) -> None:
    import soravid.pipeline as pipeline_module

    made, histories, references = [], [], []
    denoise_chunk, carry_reference = Pipeline._denoise_chunk, pipeline_module.carry

    def cleared(frames):  # (B, C, T, h, w), each latent frame cleared as the sampler does
        return torch.stack([subject_only(frame) for frame in frames.unbind(2)], dim=2)

    def record_chunk(self, chunk, history, *args, **kwargs):
        histories.append(history.clone())
        new = denoise_chunk(self, chunk, history, *args, **kwargs)
        if chunk.index < 2:  # a subject and a stray mark in every frame, as a DiT may make
            new = torch.zeros_like(new)
            new[:, :, :, 1:3, 1:3], new[:, :, :, 4, 6] = 3.0, 1.0
        made.append(new.clone())  # as the DiT made it
        return new

    def record_reference(reference, last):
        references.append(reference.clone())
        return carry_reference(reference, last)

    monkeypatch.setattr(Pipeline, "_denoise_chunk", record_chunk)
    monkeypatch.setattr(pipeline_module, "carry", record_reference)
    single = request(seconds=3.0, steps=2, continue_from=0.6, single_subject=True)
    clip = list(pipeline.frames(single))
    opening = subject_only(made[0][:, :, 0])
    assert not torch.equal(opening, made[0][:, :, 0])
    assert references and all(torch.equal(r, opening) for r in references)
    plain = list(pipeline.frames(request(seconds=3.0, steps=2, continue_from=0.6)))
    assert not np.array_equal(clip[0], plain[0])  # the opening shown is the cleared one
    # The first continuing chunk's frames (made again from their motion: the third call) go
    # on cleared too (chunk 3's context holds them).
    first_continuing = made[2]
    assert not torch.equal(cleared(first_continuing), first_continuing)
    assert torch.equal(histories[3][:, :, -first_continuing.shape[2] :], cleared(first_continuing))

    # A clip being continued may hold more than one thing: what is made goes on as made.
    made.clear(), histories.clear()
    context = pipeline.encode_context(clip)
    list(pipeline.frames(single, context=context))
    stray_kept = made[0]
    assert not torch.equal(cleared(stray_kept), stray_kept)
    assert torch.equal(histories[1][:, :, -stray_kept.shape[2] :], stray_kept)


def test_with_walls_the_clips_speed_is_measured_once_on_its_first_frames(
    pipeline: Pipeline, monkeypatch
) -> None:
    import soravid.pipeline as pipeline_module

    speeds, calls = [], []
    extrapolate, motion_speed = pipeline_module.extrapolate, pipeline_module.motion_speed

    def record_speed(history):
        speeds.append(history.shape[2])
        return motion_speed(history)

    def record(history, frames, start, speed):
        calls.append(speed)
        return extrapolate(history, frames, start, speed)

    monkeypatch.setattr(pipeline_module, "motion_speed", record_speed)
    monkeypatch.setattr(pipeline_module, "extrapolate", record)
    walled = list(pipeline.frames(request(seconds=6.0, steps=2, continue_from=0.6, walls=True)))
    assert len(speeds) == 1 and speeds[0] >= 3  # the first frames, beyond the context
    assert len(calls) >= 2 and all(speed is calls[0] for speed in calls)
    calls.clear()
    plain = list(pipeline.frames(request(seconds=6.0, steps=2, continue_from=0.6)))
    assert len(speeds) == 1 and calls and all(speed is None for speed in calls)
    assert len(walled) == len(plain)


def test_the_first_chunk_continuing_from_noise_keeps_the_most_rigid_of_its_draws(
    pipeline: Pipeline, monkeypatch
) -> None:
    made = []
    denoise_chunk = Pipeline._denoise_chunk

    def record_chunk(self, chunk, *args, **kwargs):
        frames = denoise_chunk(self, chunk, *args, **kwargs)
        draw = kwargs.get("draw")
        made.append((chunk.index, draw, kwargs, frames))
        return frames

    monkeypatch.setattr(Pipeline, "_denoise_chunk", record_chunk)
    clip = list(pipeline.frames(request(seconds=4.0, steps=2, continue_from=0.6, draws=3)))
    calls = [(index, draw) for index, draw, _, _ in made]
    # The chunk after the opening thrice from noise, then again from the kept draw's motion.
    assert calls[:5] == [(0, 0), (1, 0), (1, 1), (1, 2), (1, None)]
    assert all(draw == 0 for _, draw in calls[5:])  # the warm chunks once
    opening = made[0][3][:, :, -1:]
    drawn = [frames for _, _, _, frames in made[1:4]]
    best = drawn[int(np.argmax([rigidity(torch.cat([opening, d], dim=2)) for d in drawn]))]
    remade = made[4][2]
    assert remade["start"] == 0.6
    assert torch.equal(remade["motion"], torch.cat([opening, best], dim=2))
    single = list(pipeline.frames(request(seconds=4.0, steps=2, continue_from=0.6)))
    assert len(clip) == len(single)
    assert np.array_equal(clip[0], single[0])  # the opening is not drawn again
