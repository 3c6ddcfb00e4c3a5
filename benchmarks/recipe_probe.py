"""A recipe's DiT stage, shortened, on a trained autoencoder: what each of its choices is worth.

A full run takes two hours; its autoencoder stage is the same whatever the DiT does. This
seeds a run folder with a trained model's autoencoder (and latent statistics) at the start of
the DiT stage, runs the trainer itself from there for --steps (the recipe's own code, schedule
and EMA; fields changed with --set, omegaconf dot-list syntax), exports the model (the EMA
weights, or with --raw the last step's) and judges it as the other benchmarks do: its
continuation of held-out rendered clips (continuation_learning.py's test: 40 clips of 96x64
from three starts) and its first frames (opening_probe.py, 100 of eval's captions, with the
shape check by the caption's size and shape). With --fine-tune the DiT and text encoder
start from that model's weights too: what more steps of a variant do to a trained model, in
minutes rather than a full run. Interrupted, it continues where it stopped when run again
with the same arguments; finished, it only judges. Two probes side by side with --threads 1
see the same machine.

    python benchmarks/recipe_probe.py --recipe shapes-placed --steps 1000 --threads 1 \\
        --out-dir runs/probe-base
    python benchmarks/recipe_probe.py --recipe shapes-placed --steps 1000 --threads 1 \\
        --set dit.image_prob=0 'canvases=[[96,64]]' --out-dir runs/probe-windows
    python benchmarks/recipe_probe.py --recipe shapes-placed-bf16 --fine-tune --steps 1200 \\
        --set dit.learning_rate=3e-4 dit.warmup_steps=50 --out-dir runs/ft-base
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from continuation_learning import CLIPS_SEED, encoded_clips, judge
from omegaconf import OmegaConf
from opening_probe import first_frames

from soravid.pipeline import Pipeline
from soravid.training.checkpoint import CHECKPOINT_NAME
from soravid.training.export import export_model, final_losses
from soravid.training.recipes import TrainRecipe, get_recipe
from soravid.training.trainer import TrainEvent, new_state, save, train
from soravid.weights import embedded_model_path, load_model


def probe_recipe(name: str, steps: int, changes: list[str]) -> TrainRecipe:
    """The named recipe with its DiT stage cut to `steps` and `changes` (dot-list) applied."""
    merged = OmegaConf.merge(
        OmegaConf.create(get_recipe(name).to_dict()),
        OmegaConf.from_dotlist([f"dit.steps={steps}", *changes]),
    )
    return TrainRecipe.from_dict(OmegaConf.to_container(merged))


def seed_run(
    recipe: TrainRecipe, autoencoder_from: Path, out_dir: Path, whole: bool = False
) -> None:
    """A checkpoint at step 0 of the DiT stage whose autoencoder is the trained model's; with
    `whole`, its DiT and text encoder too, so the stage fine-tunes it."""
    state = new_state(recipe)
    trained = load_model(autoencoder_from)
    if whole:
        # A module the trained model lacks (a new input, zero at the start) keeps its init.
        missing, unexpected = state.model.load_state_dict(trained.state_dict(), strict=False)
        if unexpected:
            raise ValueError(f"{autoencoder_from} has weights the recipe's model lacks")
        print(f"fine-tuning; new in the recipe's model: {missing or 'nothing'}")
    else:
        state.model.autoencoder.load_state_dict(trained.autoencoder.state_dict())
    state.stage = "dit"
    out_dir.mkdir(parents=True, exist_ok=True)
    save(state, recipe, out_dir)


def report_progress(event: TrainEvent) -> None:
    if event.step % 100 == 0 or event.step == event.steps:
        rate = event.steps_per_second
        print(
            f"{event.stage} {event.step}/{event.steps}  loss {event.loss:.3f}  {rate:.2f} steps/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="shapes-placed")
    parser.add_argument(
        "--autoencoder",
        type=Path,
        default=embedded_model_path(),
        help="a trained model of the recipe's kind, whose autoencoder is used (default: the "
        "embedded model)",
    )
    parser.add_argument(
        "--fine-tune",
        action="store_true",
        help="start the DiT and text encoder from that model too, not from scratch",
    )
    parser.add_argument("--steps", type=int, default=1000, help="DiT steps")
    parser.add_argument("--set", nargs="*", default=[], help="recipe fields: dit.image_prob=0")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--clips", type=int, default=480, help="as continuation_learning.py")
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument(
        "--raw", action="store_true", help="judge the last step's weights, not their EMA"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = probe_recipe(args.recipe, args.steps, args.set)
    if not (args.out_dir / CHECKPOINT_NAME).exists():
        seed_run(recipe, args.autoencoder, args.out_dir, args.fine_tune)
    state = train(recipe, args.out_dir, resume=True, on_progress=report_progress)
    weights = "raw" if args.raw else "ema"
    model_path = args.out_dir / f"model-{weights}.safetensors"
    export_model(args.out_dir, model_path, ema=not args.raw)
    pipeline = Pipeline.load(str(model_path), "cpu")
    model = pipeline.model
    latents, attributes = encoded_clips(model, args.clips, CLIPS_SEED)  # its seed 0's clips
    held_out = len(attributes) - args.held_out
    openings = first_frames(pipeline, str(model_path))
    report = {
        "recipe": args.recipe,
        "changes": [f"dit.steps={args.steps}", *args.set],
        "weights": weights,
        "dit_seconds": round(state.seconds, 1),
        "final_losses": final_losses(state.losses),
        "continuation": judge(model, latents[held_out:], attributes[held_out:], oracle=False),
        "openings": openings["first_frame"],
        "openings_shape": openings["shape_by_size_and_shape"],
    }
    print(json.dumps(report))
    (args.out_dir / f"probe-{weights}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
