"""Training on the tiny recipe: every stage runs, resume is exact, the export generates."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from soravid.cli import app
from soravid.errors import BadInputError
from soravid.models.registry import MODEL_CONFIGS, build_model
from soravid.training.checkpoint import decode_json, encode_json, load_checkpoint, save_checkpoint
from soravid.training.data import CaptionStyle, ShapesClips
from soravid.training.export import export_model, final_losses, running_mean
from soravid.training.recipes import (
    EMBEDDED_RECIPE,
    RECIPES,
    AutoencoderStage,
    DecoderStage,
    DiTStage,
    TrainRecipe,
    get_recipe,
)
from soravid.training.trainer import (
    DistillObjective,
    compiled,
    crop_corners,
    detail_crops,
    dit_estimate,
    dit_inputs,
    edge_mask,
    fill_pool,
    new_state,
    start_distillation,
    train,
    training_autocast,
)
from soravid.video import probe_video
from soravid.weights import (
    TRAINING_KEY,
    describe_model,
    embedded_model_path,
    file_sha256,
    load_model,
    native_cpu_bfloat16,
    read_metadata,
    weights_sha256,
)
from soravid.world import CAPTION_VOCABULARY
from soravid.world.measure import measure_frame
from soravid.world.spec import object_extent


class Interrupt(Exception):
    pass


def stop_at(stage: str, step: int):
    def callback(event) -> None:
        if event.stage == stage and event.step == step:
            raise Interrupt

    return callback


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    train(get_recipe("tiny"), run)
    return run


def test_training_runs_every_stage(finished_run: Path) -> None:
    saved = load_checkpoint(finished_run)
    assert saved["stage"] == "done"
    stages = [stage for stage, _, _ in saved["losses"]]
    assert stages.count("autoencoder") == 3 and stages.count("dit") == 3
    assert stages.count("distill") == 2 and stages.count("decoder") == 2
    assert stages.count("tune") == 2
    assert all(torch.isfinite(torch.tensor(loss)) for _, _, loss in saved["losses"])


# distill at 1: from the checkpoint at the stage's start (the tiny recipe saves every 2 steps)
@pytest.mark.parametrize(
    ("stage", "step"),
    [("autoencoder", 2), ("dit", 2), ("distill", 1), ("distill", 2), ("decoder", 1), ("tune", 1)],
)
def test_resume_continues_exactly(
    finished_run: Path, tmp_path: Path, stage: str, step: int
) -> None:
    with pytest.raises(Interrupt):
        train(get_recipe("tiny"), tmp_path, on_progress=stop_at(stage, step))
    train(get_recipe("tiny"), tmp_path, resume=True)
    straight, resumed = load_checkpoint(finished_run), load_checkpoint(tmp_path)
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert straight["losses"] == resumed["losses"]


def test_compiled_dit_trains_with_the_same_losses(finished_run: Path, tmp_path: Path) -> None:
    """DiTStage.compile changes the kernels, not the training: the same losses to float
    rounding, and a checkpoint under the same names."""
    recipe = get_recipe("tiny")
    recipe.dit.compile = True
    state = train(recipe, tmp_path)
    # Eager after its stage: the later stages run it as a resumed run's new process would.
    assert state.model.dit._compiled_call_impl is None
    plain, compiled_run = load_checkpoint(finished_run), load_checkpoint(tmp_path)
    assert compiled_run["model"].keys() == plain["model"].keys()
    for (stage, step, loss), (_, _, plain_loss) in zip(
        compiled_run["losses"], plain["losses"], strict=True
    ):
        assert loss == pytest.approx(plain_loss, rel=1e-3, abs=1e-5), (stage, step)


def test_a_compiled_network_is_eager_again_after_the_block_even_if_it_fails() -> None:
    layer = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError), compiled(layer):
        assert layer._compiled_call_impl is not None
        raise RuntimeError("the stage failed")
    assert layer._compiled_call_impl is None


def test_activation_checkpointing_trains_with_the_same_losses(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DiTStage.activation_checkpointing reaches the DiT and changes memory, not training."""
    recomputed = []

    def counted(block, *inputs, **kwargs):
        recomputed.append(block)
        return torch.utils.checkpoint.checkpoint(block, *inputs, **kwargs)

    monkeypatch.setattr("soravid.models.dit.checkpoint", counted)
    recipe = get_recipe("tiny")
    recipe.dit.activation_checkpointing = True
    train(recipe, tmp_path)
    assert recomputed
    checkpointed, plain = load_checkpoint(tmp_path), load_checkpoint(finished_run)
    for (stage, step, loss), (_, _, plain_loss) in zip(
        checkpointed["losses"], plain["losses"], strict=True
    ):
        assert loss == pytest.approx(plain_loss, rel=1e-4, abs=1e-6), (stage, step)


def test_resume_refuses_another_recipe(finished_run: Path) -> None:
    recipe = get_recipe("tiny")
    recipe.seed = 1
    with pytest.raises(BadInputError, match="another recipe"):
        train(recipe, finished_run, resume=True)


def test_resume_reads_a_recipe_saved_before_a_field_was_added(
    finished_run: Path, tmp_path: Path
) -> None:
    """A field a newer soravid added is, at its default, the same recipe: the run resumes."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    saved = load_checkpoint(run)
    recipe = decode_json(saved["recipe"])
    del recipe["dit"]["start_prob"]  # the tiny recipe keeps its default
    save_checkpoint(saved | {"recipe": encode_json(recipe)}, run)
    assert train(get_recipe("tiny"), run, resume=True).stage == "done"


def test_export_writes_ema_weights_and_provenance(finished_run: Path, tmp_path: Path) -> None:
    with pytest.raises(Interrupt):  # at the end of the distillation, which keeps an EMA
        train(get_recipe("tiny"), tmp_path / "run", on_progress=stop_at("distill", 2))
    saved = load_checkpoint(tmp_path / "run")
    save_checkpoint(saved | {"stage": "done"}, tmp_path / "run")
    export_model(tmp_path / "run", tmp_path / "ema.safetensors")
    model = load_model(tmp_path / "ema.safetensors")
    for name, tensor in saved["ema"].items():  # stored as float16
        assert torch.equal(model.get_parameter(name).detach(), tensor.half().float()), name
    # The tiny recipe's decoder stage keeps none (ema_decay 0): the last step's own weights.
    with pytest.raises(Interrupt):
        train(get_recipe("tiny"), tmp_path / "decoder", on_progress=stop_at("decoder", 2))
    saved = load_checkpoint(tmp_path / "decoder")
    assert saved["ema"] is None
    save_checkpoint(saved | {"stage": "done"}, tmp_path / "decoder")
    path = tmp_path / "model.safetensors"
    export_model(tmp_path / "decoder", path)
    exported = load_model(path).state_dict()
    for name, tensor in saved["model"].items():
        assert torch.equal(exported[name], tensor.half().float()), name
    assert "soravid.training" in read_metadata(path)
    assert model.config.schedule_shift == get_recipe("tiny").schedule_shift


def test_decoder_stage_with_an_ema_keeps_one_of_the_decoder_alone(tmp_path: Path) -> None:
    """DecoderStage.ema_decay: the stage averages the decoder's weights, the next stage starts
    from that average, and a run interrupted inside the stage resumes to the same weights."""
    recipe = get_recipe("tiny")
    recipe.decoder.ema_decay = 0.9
    with pytest.raises(Interrupt):
        train(recipe, tmp_path / "stopped", on_progress=stop_at("decoder", 2))
    saved = load_checkpoint(tmp_path / "stopped")
    assert saved["ema"].keys() == {
        name for name in saved["model"] if name.startswith("autoencoder.decoder.")
    }
    assert any(not torch.equal(saved["ema"][n], saved["model"][n]) for n in saved["ema"])
    train(recipe, tmp_path / "stopped", resume=True)
    train(recipe, tmp_path / "straight")
    straight, resumed = (load_checkpoint(tmp_path / r) for r in ("straight", "stopped"))
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
        if name in saved["ema"]:  # the tune stage leaves the decoder as the EMA exported it
            assert torch.equal(tensor, saved["ema"][name].half().float()), name


def test_decoder_stage_with_estimates_resumes_exactly(tmp_path: Path) -> None:
    """DecoderStage.estimate_prob: the decoder also learns from the DiT's estimates (drawn
    with the shard's generator, which the checkpoint keeps), so a run interrupted inside the
    stage resumes to the weights of one that went straight on, and they differ from plain
    reconstruction's."""
    recipe = get_recipe("tiny")
    recipe.decoder.estimate_prob = 0.5
    recipe.tune.steps = 0
    with pytest.raises(Interrupt):
        train(recipe, tmp_path / "stopped", on_progress=stop_at("decoder", 1))
    train(recipe, tmp_path / "stopped", resume=True)
    train(recipe, tmp_path / "straight")
    plain = dataclasses.replace(recipe, decoder=get_recipe("tiny").decoder)
    train(plain, tmp_path / "plain")
    straight, resumed, reconstructed = (
        load_checkpoint(tmp_path / run) for run in ("straight", "stopped", "plain")
    )
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    decoder = [name for name in straight["model"] if name.startswith("autoencoder.decoder.")]
    assert any(not torch.equal(straight["model"][n], reconstructed["model"][n]) for n in decoder)
    undecoded = [name for name in straight["model"] if name not in decoder]
    assert all(torch.equal(straight["model"][n], reconstructed["model"][n]) for n in undecoded)


def test_dit_estimate_is_one_guided_step_after_the_context() -> None:
    """The frames after the first, noised to the stage's flow time, made again in one guided
    Euler step to time 0: x_t - t * v, v = v_empty + guidance * (v_caption - v_empty)."""
    model = build_model("tiny", CAPTION_VOCABULARY).eval()
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn(2, 4, 3, 4, 6, generator=generator)
    noise = torch.randn(latent.shape, generator=generator)
    stage = DecoderStage(estimate_time=0.3, estimate_guidance=2.0)
    captions = ["a red circle", "a small blue square moving left"]
    with torch.no_grad():
        estimate = dit_estimate(model, latent, noise, captions, stage)
        x = torch.cat([latent[:, :, :1], 0.7 * latent[:, :, 1:] + 0.3 * noise[:, :, 1:]], dim=2)
        t = torch.tensor([[0.0, 0.3, 0.3]]).expand(2, 3)
        text = model.encode_text(captions + ["", ""])
        velocity = model.velocity(torch.cat([x, x]), torch.cat([t, t]), text, 1)
        conditional, unconditional = velocity.chunk(2)
        expected = x - 0.3 * (unconditional + 2.0 * (conditional - unconditional))
    assert torch.equal(estimate[:, :, :1], latent[:, :, :1])
    assert torch.allclose(estimate[:, :, 1:], expected[:, :, 1:], atol=1e-5)


def test_crop_corners_stay_inside_on_the_grid() -> None:
    video = -torch.ones(5, 3, 1, 20, 30)
    video[..., 3:9, 21:27] = 1.0
    rng = np.random.default_rng(0)
    for top, left in crop_corners(video, (12, 16), 1.0, rng, align=4):
        assert top % 4 == 0 and left % 4 == 0
        assert 0 <= top <= 20 - 12 and 0 <= left <= 30 - 16
        assert top <= 3 + 1 and left + 16 >= 21  # centred on the square's edge, then aligned


def test_edge_mask_marks_colour_changes_only() -> None:
    video = -torch.ones(1, 3, 1, 8, 8)
    video[..., 2:5, 2:5] = 1.0
    mask = edge_mask(video)[0, 0, 0]
    assert mask[2, 2] == 1 and mask[1, 1] == 1  # the square's corner and the ring around it
    assert mask[3, 3] == 0 and mask[0, 0] == 0 and mask[7, 7] == 0  # inside and far outside
    assert mask.sum() == 5 * 5 - 1


def test_loss_summaries() -> None:
    assert running_mean([1.0, 3.0, 5.0], 2) == [1.0, 2.0, 4.0]
    losses = [["a", 1, 1.0], ["a", 2, 3.0], ["b", 1, 0.5]]
    assert final_losses(losses, last=1) == {"a": 3.0, "b": 0.5}


def test_cli_trains_exports_and_generates(tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--recipe", "tiny", "--out", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (run / "model.safetensors").is_file() and (run / "losses.png").is_file()
    again = runner.invoke(app, ["train", "--recipe", "tiny", "--out", str(run)])
    assert again.exit_code == 2
    clip = tmp_path / "clip.mp4"
    args = ["generate", "a red ball", "--model", str(run / "model.safetensors"), "-o", str(clip)]
    generated = runner.invoke(app, [*args, "--preset", "square", "--seconds", "1", "--quiet"])
    assert generated.exit_code == 0, generated.output
    assert probe_video(clip).frames == 8


def test_cli_rejects_unknown_recipe_and_missing_resume(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["train", "--recipe", "nope"]).exit_code == 2
    missing = runner.invoke(app, ["train", "--recipe", "tiny", "--out", str(tmp_path), "--resume"])
    assert missing.exit_code == 2


def test_detail_crops_centre_on_edges() -> None:
    video = -torch.ones(4, 3, 2, 48, 64)
    video[..., 30:36, 50:56] = 1.0  # one small bright square far from the top-left corner
    crops = detail_crops(video, 16, detail_prob=1.0, rng=np.random.default_rng(0))
    assert crops.shape == (4, 3, 2, 16, 16)
    assert all((crop > 0).any() for crop in crops)  # every crop shows part of the square
    assert detail_crops(video, 0, 1.0, np.random.default_rng(0)) is video  # 0: whole canvas
    wide = detail_crops(video, 56, 0.0, np.random.default_rng(0))
    assert wide.shape == (4, 3, 2, 48, 56)  # a side longer than the canvas is cut to it


def test_info_describes_a_trained_model(finished_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    export_model(finished_run, path)
    result = CliRunner().invoke(app, ["info", "--model", str(path), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["id"] == f"tiny@{record['sha256'][:12]}"
    assert record["training"]["seed"] == 0 and "dit" in record["training"]["final_losses"]
    assert record["parameters"] == sum(p.numel() for p in load_model(path).state_dict().values())


def test_weights_sha256_ignores_the_training_time_alone(finished_run: Path, tmp_path: Path) -> None:
    """A rerun of a recipe gives the same weights in another number of seconds: its file's
    sha256 differs, its weights_sha256 must not; any change to a tensor must change it."""
    path = tmp_path / "model.safetensors"
    export_model(finished_run, path)
    metadata = read_metadata(path)
    training = json.loads(metadata[TRAINING_KEY])
    tensors = load_file(str(path))

    def resaved(name: str, seconds: float, tensors: dict) -> Path:
        resaved_path = tmp_path / name
        record = json.dumps(training | {"train_seconds": seconds})
        save_file(tensors, str(resaved_path), metadata=metadata | {TRAINING_KEY: record})
        return resaved_path

    slower = resaved("slower.safetensors", training["train_seconds"] + 60, tensors)
    assert file_sha256(slower) != file_sha256(path)
    assert weights_sha256(slower) == weights_sha256(path)
    name = next(iter(tensors))
    changed = tensors | {name: tensors[name] + 1}
    assert weights_sha256(resaved("changed.safetensors", training["train_seconds"], changed)) != (
        weights_sha256(path)
    )


def dit_batches(image_prob: float, count: int, opening_object_weight: float | None = None):
    """`count` micro-batches of the tiny recipe's DiT stage with this share of image steps."""
    recipe = get_recipe("tiny")
    recipe.dit.image_prob = image_prob
    recipe.dit.opening_object_weight = opening_object_weight
    state = new_state(recipe)
    shard = state.shards[0]
    fill_pool(shard, state.model, recipe.dit, state.device)
    style = CaptionStyle()
    return recipe, [
        dit_inputs(state.model, shard, recipe.dit, style, state.device) for _ in range(count)
    ]


def test_dit_windows_always_carry_context() -> None:
    recipe, batches = dit_batches(image_prob=0.0, count=4)
    for inputs in batches:
        assert inputs.latent.shape[2] == 3  # the tiny model's window
        context = inputs.is_context.sum(dim=1)
        assert (context >= recipe.dit.min_context_frames).all()
        assert (context <= recipe.dit.max_context_frames).all()
        assert (inputs.t[inputs.is_context] <= recipe.dit.context_noise).all()
        assert not inputs.placement.any()  # windows continue: their context says where
        assert inputs.object_weight == recipe.dit.object_weight


def test_openings_take_their_own_object_weight_where_the_recipe_sets_one() -> None:
    recipe, batches = dit_batches(image_prob=1.0, count=1)
    assert batches[0].object_weight == recipe.dit.object_weight == 4.0
    _, batches = dit_batches(image_prob=1.0, count=1, opening_object_weight=0.0)
    assert batches[0].object_weight == 0.0
    _, batches = dit_batches(image_prob=0.0, count=1, opening_object_weight=0.0)
    assert batches[0].object_weight == 4.0  # windows keep the stage's


def test_image_steps_train_first_latent_frames_alone_from_noise() -> None:
    recipe, batches = dit_batches(image_prob=1.0, count=2)
    for inputs in batches:
        # As many tokens as a batch of windows: batch_size x window_frames single frames.
        assert inputs.latent.shape[:3] == (recipe.dit.batch_size * 3, 4, 1)
        assert not inputs.is_context.any() and len(inputs.captions) == len(inputs.latent)
        # The tiny DiT takes placement: a map of where each object starts, one bump each.
        assert inputs.placement.shape == (len(inputs.latent), 1, 1, *inputs.latent.shape[3:])
        assert torch.allclose(inputs.placement.amax(dim=(2, 3, 4)), torch.ones(1), atol=0.5)
    assert not torch.equal(batches[0].latent, batches[1].latent)  # a refreshed pool, new picks


def test_openings_come_from_a_refreshed_pool_with_their_starts() -> None:
    """The tiny recipe keeps 5 encoded openings per canvas and replaces 2 of the step's canvas
    each opening step; every opening drawn is one of the pool's, with its own start's map."""
    recipe = get_recipe("tiny")
    recipe.dit.image_prob = 1.0
    state = new_state(recipe)
    shard = state.shards[0]
    fill_pool(shard, state.model, recipe.dit, state.device)
    pool = shard.openings
    assert [tuple(latent.shape[:3]) for latent in pool.latents] == [(5, 4, 1)] * 2
    before = [latent.clone() for latent in pool.latents]
    inputs = dit_inputs(state.model, shard, recipe.dit, CaptionStyle(), state.device)
    canvas = next(c for c in range(2) if pool.latents[c].shape[3:] == inputs.latent.shape[3:])
    assert pool.oldest[canvas] == 2 and not torch.equal(before[canvas], pool.latents[canvas])
    for latent, placement in zip(inputs.latent, inputs.placement, strict=True):
        clip = next(i for i in range(5) if torch.equal(pool.latents[canvas][i], latent))
        x, y = pool.starts[canvas][clip].tolist()
        row, column = divmod(int(placement.argmax()), placement.shape[-1])
        assert (row, column) == (int(y // 4), int(x // 4))  # 4-pixel latent cells


def test_distillation_starts_as_the_teacher_at_scale_one() -> None:
    """The student starts as its teacher and the guidance embedding at zero: at scale 1 the
    guided target is the teacher's prompted velocity, which the student gives already."""
    recipe = get_recipe("tiny")
    state = new_state(recipe)
    model = state.model
    with torch.no_grad():  # a DiT whose output depends on its input, as a trained one's does
        for name, parameter in model.dit.named_parameters():
            if not parameter.any() and not name.startswith("guidance_embed"):
                parameter.normal_(0.0, 0.1)
    state.ema = {name: p.detach().clone() for name, p in model.named_parameters()}
    shard = state.shards[0]
    fill_pool(shard, model, recipe.dit, state.device)
    start_distillation(state)
    teacher = copy.deepcopy(model.dit)
    teacher.load_state_dict(state.teacher)
    objective = DistillObjective(model, teacher)
    inputs = dit_inputs(model, shard, recipe.dit, CaptionStyle(0.0), state.device)
    with torch.no_grad():
        at_one = objective(inputs, torch.ones(len(inputs.captions)))
        at_three = objective(inputs, torch.full((len(inputs.captions),), 3.0))
    assert at_one < 1e-10 < 1e-4 < at_three


def test_a_recipe_distils_exactly_a_dit_that_takes_the_scale() -> None:
    recipe = get_recipe("tiny")
    recipe.distill.steps = 0
    with pytest.raises(BadInputError, match="guidance_embedding"):
        new_state(recipe)


def test_rendered_clips_say_where_their_object_starts() -> None:
    clips = ShapesClips([[96, 64]], fps=8, seed=1)
    video, attributes, starts = clips.render(0, 6, 1)
    frames = ((video[:, :, 0].permute(0, 2, 3, 1) + 1) * 127.5).round().byte().numpy()
    for frame, attrs, start in zip(frames, attributes, starts, strict=True):
        centre = measure_frame(frame).centre  # a triangle's centroid is D/6 below its box's
        below = object_extent(attrs.size, 96, 64) / 6 if attrs.shape == "triangle" else 0.0
        assert abs(centre[0] - start[0]) < 1.0 and abs(centre[1] - start[1] - below) < 1.0


def test_canvas_weights_set_how_often_each_canvas_is_drawn() -> None:
    canvases = [[96, 64], [64, 64], [64, 112]]
    plain, same = ShapesClips(canvases, fps=8, seed=2), np.random.default_rng(2)
    drawn = [plain.random_canvas() for _ in range(50)]
    assert drawn == same.integers(3, size=50).tolist()  # unweighted recipes draw as before
    clips = ShapesClips(canvases, fps=8, seed=2)
    counts = np.bincount([clips.random_canvas([6, 1, 1]) for _ in range(4000)], minlength=3)
    assert np.allclose(counts / 4000, [0.75, 0.125, 0.125], atol=0.03)
    for bad in ([1, 1], [1, 0, 1]):  # refused when the recipe is made, before any training
        with pytest.raises(ValueError, match="canvas_weights"):
            TrainRecipe(canvases=canvases, dit=DiTStage(canvas_weights=bad))


def test_every_recipe_trains_a_model_config_it_fits() -> None:
    for name, recipe in RECIPES.items():
        config = MODEL_CONFIGS[recipe.model]
        assert (recipe.distill.steps > 0) == config.dit.guidance_embedding, name
        assert (recipe.opening.steps > 0) == config.opening_dit, name
    assert MODEL_CONFIGS["shapes-placed"].dit.placement
    assert not MODEL_CONFIGS["shapes"].dit.placement  # the earlier weights' config, unchanged
    assert RECIPES[EMBEDDED_RECIPE].model == "shapes-opening"  # soravid train's default
    assert MODEL_CONFIGS["shapes-opening"].opening_dit


def test_the_embedded_weights_were_trained_by_the_embedded_recipe() -> None:
    """The shipped file records the recipe that made it; `soravid train`'s default must be
    that recipe, so its one documented command reproduces them."""
    trained = describe_model(embedded_model_path())["training"]
    assert TrainRecipe.from_dict(trained["recipe"]) == get_recipe(EMBEDDED_RECIPE)


def test_readme_names_the_embedded_models_id_and_weights_digest() -> None:
    """README tells a rerun of the recipe which weights_sha256 to match: the shipped file's."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    described = describe_model(embedded_model_path())
    assert f"`{described['id']}`" in readme
    assert f"`{described['weights_sha256'][:12]}...`" in readme


def test_cpu_bfloat16_is_the_dit_stages_choice_and_needs_native_support() -> None:
    cpu = torch.device("cpu")
    with training_autocast(cpu, DiTStage()):
        assert not torch.is_autocast_enabled("cpu")  # float32 unless asked
    with training_autocast(cpu, AutoencoderStage()):
        assert not torch.is_autocast_enabled("cpu")
    with training_autocast(cpu, DiTStage(cpu_bfloat16=True)):
        assert torch.is_autocast_enabled("cpu") == native_cpu_bfloat16()


def test_a_dit_stage_in_cpu_bfloat16_trains(tmp_path: Path) -> None:
    recipe = get_recipe("tiny")
    recipe.dit.cpu_bfloat16 = True
    state = train(recipe, tmp_path / "run")
    dit_losses = [loss for stage, _, loss in state.losses if stage == "dit"]
    assert len(dit_losses) == recipe.dit.steps and all(math.isfinite(x) for x in dit_losses)


def test_the_last_stages_start_from_an_exported_model_as_the_run_that_went_on(
    finished_run: Path, tmp_path: Path
) -> None:
    """The tiny recipe without its last stages, exported, then those stages alone from the
    file (`soravid train --from`): the weights of the run that went on. The decoder stage
    changes the decoder alone, the tune stage the DiT and text encoder alone."""

    def exported(run: Path) -> dict[str, torch.Tensor]:
        path = tmp_path / f"{run.name}.safetensors"
        export_model(run, path)
        return load_model(path).state_dict()

    def changed(before: dict, after: dict) -> set[str]:
        return {name for name, tensor in before.items() if not torch.equal(tensor, after[name])}

    recipe = get_recipe("tiny")
    went_on = exported(finished_run)
    before_decoder = dataclasses.replace(recipe, decoder=DecoderStage(), tune=DiTStage(steps=0))
    before_tune = dataclasses.replace(recipe, tune=DiTStage(steps=0))
    train(before_decoder, tmp_path / "first")
    train(before_tune, tmp_path / "decoded")
    first, decoded = exported(tmp_path / "first"), exported(tmp_path / "decoded")
    for source in ("first", "decoded"):
        train(recipe, tmp_path / f"from-{source}", start_from=tmp_path / f"{source}.safetensors")
        started = exported(tmp_path / f"from-{source}")
        for name, tensor in went_on.items():
            assert torch.equal(tensor, started[name]), (source, name)
    assert changed(first, decoded) and all(
        name.startswith("autoencoder.decoder.") for name in changed(first, decoded)
    )
    tuned = changed(decoded, went_on)
    assert any(name.startswith("dit.") for name in tuned)
    assert all(name.startswith(("dit.", "text_encoder.")) for name in tuned)
    provenance = json.loads(read_metadata(tmp_path / "from-decoded.safetensors")[TRAINING_KEY])
    assert "started_from" in provenance and "decoder" in provenance["final_losses"]
    with pytest.raises(BadInputError, match="--from takes a model"):  # it had every stage
        train(recipe, tmp_path / "again", start_from=tmp_path / "from-first.safetensors")


def test_a_recipe_whose_emphasis_cannot_be_drawn_is_refused_before_training() -> None:
    recipe = get_recipe("tiny")
    recipe.tune.emphasis = {"shape": {"star": 0.5}}
    with pytest.raises(ValueError, match="no value 'star'"):
        new_state(recipe)
