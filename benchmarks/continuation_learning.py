"""How fast a DiT learns to continue a clip: train a fresh one on continuation alone, judge it.

Continuation limits the embedded model (README, "Where the loss goes"), and a full training
run takes two hours, so DiT variants are compared here in minutes of one core each (two
variants side by side with --threads 1 see the same machine). Clips of the shapes world are
rendered at 96x64 and encoded once by a trained model's autoencoder; a fresh DiT of that
model's config (DiTConfig fields overridable) learns windows of 1 true latent frame as context
and 3 to make, for --minutes. Then, for held-out clips and starts 0, 3 and 6, it samples the 3
new latent frames (8 steps, guidance 3), decodes the window (13 frames) and judges it as one
window against the clip's attributes; also the latent MSE of its clean estimate at t = 1 per
new frame. --minutes 0 judges the model itself, --oracle its autoencoder alone (the true
latents decoded): the ceiling. --fine-tune trains the model's own DiT and text encoder instead
of fresh ones: whether a trained model lacks continuation for want of capacity or of training
on it.

    python benchmarks/continuation_learning.py --minutes 45 --threads 1 --object-weight 12
    python benchmarks/continuation_learning.py --minutes 45 --threads 1 --dit patch=1,2,2 --batch 8
    python benchmarks/continuation_learning.py --minutes 0      # the model as trained
    python benchmarks/continuation_learning.py --minutes 20 --fine-tune --lr 2e-4
    python benchmarks/continuation_learning.py --canvases 64x64 64x112 112x64  # the recipe's
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from soravid.flow import (
    denoise,
    flow_matching_loss,
    interpolate,
    make_noise,
    sample_flow_times,
    time_schedule,
)
from soravid.models.registry import SoravidModel
from soravid.motion import extrapolate
from soravid.pipeline import to_uint8_frames
from soravid.training.data import CaptionStyle, ShapesClips
from soravid.training.latents import object_loss_weight
from soravid.training.trainer import trained_parameters
from soravid.weights import load_model
from soravid.world import WorldAttributes, canonical_caption
from soravid.world.judge import judge_window
from soravid.world.measure import measure_frame

CANVAS = (96, 64)
FPS = 8
WINDOW = 4  # latent frames: 1 context, 3 new
STARTS = (0, 3, 6)  # latent frame given as context: a clip's first frame, then mid-clip ones
CLIPS_SEED = 123  # added to --seed: the rendered clips' stream, apart from the DiT's own


def encoded_clips(
    model: SoravidModel, count: int, seed: int, canvas: tuple[int, int] = CANVAS
) -> tuple[torch.Tensor, list]:
    """`count` rendered clips of 41 frames (11 latent frames), encoded: (B, C, 11, h, w)."""
    clips = ShapesClips([list(canvas)], FPS, seed)
    latents, attributes = [], []
    with torch.no_grad():
        for _ in range(0, count, 24):
            video, drawn, _ = clips.render(0, 24, 41)
            latents.append(model.autoencoder.encode(video))
            attributes += drawn
    return torch.cat(latents)[:count], attributes[:count]


def fresh_model(trained: SoravidModel, overrides: dict[str, object]) -> SoravidModel:
    """A new DiT and text encoder of the trained model's config, on its frozen autoencoder."""
    config = copy.deepcopy(trained.config)
    for name, value in overrides.items():
        setattr(config.dit, name, value)
    config.dit.__post_init__()
    model = SoravidModel(config, trained.tokenizer)
    model.autoencoder.load_state_dict(trained.autoencoder.state_dict())
    model.autoencoder.requires_grad_(False)
    return model


def train(model, canvases: list[tuple[torch.Tensor, list]], args) -> dict:
    """Train on windows for args.minutes of wall time; the loss as the recipe's DiT stage.
    Each step's windows come from one of `canvases` (latents, attributes), drawn uniformly."""
    parameters = trained_parameters(model)
    optimizer = torch.optim.AdamW(parameters.values(), lr=args.lr, betas=(0.9, 0.99))
    clips = ShapesClips([list(CANVAS)], FPS, args.seed + 1)  # captions' random draws
    style = CaptionStyle(uncond_prob=0.1, paraphrase_prob=0.8, part_drop_prob=0.15)
    generator = torch.Generator().manual_seed(args.seed)
    is_new = torch.ones(args.batch, WINDOW, dtype=torch.bool)
    is_new[:, 0] = False
    losses, began = [], time.perf_counter()
    while time.perf_counter() - began < args.minutes * 60:
        canvas = int(torch.randint(len(canvases), (), generator=generator))
        latents, attributes = canvases[canvas]
        picks = torch.randint(len(attributes), (args.batch,), generator=generator).tolist()
        starts = torch.randint(0, latents.shape[2] - WINDOW + 1, (args.batch,), generator=generator)
        x0 = torch.stack(
            [latents[i, :, s : s + WINDOW] for i, s in zip(picks, starts.tolist(), strict=True)]
        )
        text = model.encode_text([clips.caption(attributes[i], style) for i in picks])
        t = sample_flow_times(args.batch, WINDOW, generator, per_frame=False, shift=3.0)
        t[:, 0] = torch.rand(args.batch, generator=generator) * 0.1  # the context, nearly clean
        loss = flow_matching_loss(
            lambda x, times, text=text: model.velocity(x, times, text, 1),
            x0,
            torch.randn(x0.shape, generator=generator),
            t,
            loss_mask=is_new,
            weight=object_loss_weight(x0, args.object_weight),
        )
        for group in optimizer.param_groups:  # warm-up
            group["lr"] = args.lr * min(1.0, (len(losses) + 1) / 50)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(parameters.values()), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if len(losses) % 50 == 0:
            rate = len(losses) / (time.perf_counter() - began)
            print(f"step {len(losses)}  loss {np.mean(losses[-50:]):.4f}  {rate:.2f} steps/s")
    return {"steps": len(losses), "loss": float(np.mean(losses[-100:])) if losses else None}


@torch.no_grad()
def judge(
    model, latents, attributes: list[WorldAttributes], oracle: bool, continue_from: float = 1.0
) -> dict:
    """Judged continuations of every held-out clip from each start, and the t = 1 estimate.
    With continue_from < 1 the new frames start at that flow time from the context frame
    carried on by the motion from the frame before it (motion.extrapolate), as the sampler's
    continue_from does; a clip's first frame has none before it and is carried on still."""
    model.eval()
    counts: dict[str, int] = {}
    errors = []
    captions = [canonical_caption(a) for a in attributes]
    text = model.encode_text(captions + [""] * len(captions))
    for start in STARTS:
        truth = latents[:, :, start : start + WINDOW]
        noise = torch.cat(
            [make_noise((1, *truth.shape[1:]), 1000 * start + i) for i in range(len(captions))]
        )

        def velocity(x, t):
            return model.velocity(x, t, text if len(x) > len(captions) else text.first(len(x)), 1)

        made = truth
        if not oracle:
            schedule = time_schedule(8, model.config.schedule_shift, continue_from)
            start_from = noise.clone()
            if continue_from < 1:
                if start:
                    guess = extrapolate(latents[:, :, start - 1 : start + 1], WINDOW - 1)
                else:
                    guess = truth[:, :, :1].expand(-1, -1, WINDOW - 1, -1, -1)
                start_from[:, :, 1:] = interpolate(guess, noise[:, :, 1:], continue_from)
            context = truth[:, :, :1]
            made = denoise(velocity, start_from, context, 1, schedule, 3.0, context_time=0.05)
        at_one = torch.cat([truth[:, :, :1], noise[:, :, 1:]], dim=2)
        times = torch.ones(len(captions), WINDOW)
        times[:, 0] = 0.05
        estimate = at_one - velocity(at_one, times)  # x0 = x_t - t v at t = 1
        errors.append(((estimate - truth) ** 2)[:, :, 1:].mean(dim=(0, 1, 3, 4)))
        for index, expected in enumerate(attributes):
            frames = to_uint8_frames(model.autoencoder.decode(made[index : index + 1]))
            span = (0.0, len(frames) / FPS)
            window = judge_window([measure_frame(f) for f in frames], span, FPS, CANVAS, expected)
            for name, passed in {**window.checks, "all": window.passed}.items():
                counts[name] = counts.get(name, 0) + passed
    total = len(STARTS) * len(attributes)
    return {
        "judged": total,
        "accuracy": {name: round(count / total, 3) for name, count in counts.items()},
        "x0_mse_at_t1_per_new_frame": [round(float(e), 4) for e in torch.stack(errors).mean(0)],
    }


def parse_override(text: str) -> tuple[str, object]:
    name, value = text.split("=", 1)
    numbers = [float(v) if "." in v else int(v) for v in value.split(",")]
    return name, tuple(numbers) if len(numbers) > 1 else numbers[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("soravid/weights/shapes.safetensors"))
    parser.add_argument("--minutes", type=float, default=45.0, help="0: judge the model itself")
    parser.add_argument("--oracle", action="store_true", help="judge the true latents decoded")
    parser.add_argument("--fine-tune", action="store_true", help="train the model's own DiT")
    parser.add_argument("--object-weight", type=float, default=0.0)
    parser.add_argument("--dit", type=parse_override, nargs="*", default=[], help="name=value")
    parser.add_argument(
        "--canvases", nargs="*", default=[], help="WxH: also train on these (judged on 96x64)"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--clips", type=int, default=480, help="rendered and encoded")
    parser.add_argument("--held-out", type=int, default=40, help="the last clips, judged")
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--continue-from", type=float, default=1.0, help="sampler.continue_from when judging"
    )
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    trained = load_model(args.model)
    latents, attributes = encoded_clips(trained, args.clips, args.seed + CLIPS_SEED)
    held_out = len(attributes) - args.held_out
    model, result = trained, {"steps": 0, "loss": None}
    if args.minutes > 0:
        model = trained if args.fine_tune else fresh_model(trained, dict(args.dit))
        canvases = [(latents[:held_out], attributes[:held_out])]
        for index, size in enumerate(args.canvases):
            width, height = map(int, size.split("x"))
            seed = args.seed + CLIPS_SEED + 1 + index
            canvases.append(encoded_clips(trained, held_out, seed, (width, height)))
        result = train(model, canvases, args)
    held = latents[held_out:], attributes[held_out:]
    result |= judge(model, *held, args.oracle, args.continue_from)
    result |= {
        "model": str(args.model),
        "fine_tune": args.fine_tune,
        "object_weight": args.object_weight,
        "continue_from": args.continue_from,
        "dit": dict(args.dit),
        "canvases": ["x".join(map(str, CANVAS)), *args.canvases],
    }
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
