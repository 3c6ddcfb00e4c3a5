"""What one training step of a recipe costs per GPU: parameters, tokens, FLOPs, memory.

Nothing is computed: the models run on PyTorch's meta device, where tensors have shapes but no
data, under torch's FLOP counter, and every tensor autograd saves for the backward is weighed.
A micro-batch is `batch_size` clips at the recipe's largest canvas (the worst case for memory).
The README's per-GPU table comes from this script.

    python benchmarks/train_cost.py               # tiny, shapes, S, B
    python benchmarks/train_cost.py S --mfu 0.3   # one recipe, another utilisation

Per step and GPU, with A micro-batches accumulated:
  FLOPs    = A x (forward + backward of one micro-batch)   [counted; cross-checked against
             6 x N x tokens for the DiT's linear layers plus 12 x layers x tokens^2 x width for
             its attention]
  time     = FLOPs / (peak x MFU)                          [peak: H100 SXM dense bf16, 989 TFLOP/s]
             or the time to render the micro-batch's clips on one CPU core, if longer
             (measured here: rendering runs in the training process)
  hours    = steps x time per step: the same on any number of GPUs, since each GPU adds its
             micro-batch to the global batch rather than taking a share of a fixed one
  memory   = 16 B per trained parameter (float32 weight, gradient, Adam's two moments)
           + 4 B per EMA or frozen parameter + the saved activations of one micro-batch
             (counted in float32: bf16 autocast stores many of them at half that)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from unittest.mock import patch

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from soravid.flow import flow_matching_loss
from soravid.models.registry import SoravidModel, build_model
from soravid.training.data import ShapesClips
from soravid.training.recipes import RECIPES, TrainRecipe
from soravid.training.trainer import autoencoder_loss
from soravid.world import CAPTION_VOCABULARY

H100_BF16 = 989e12  # FLOP/s, dense


class SavedTensors:
    """Weighs what autograd keeps for the backward, each tensor once."""

    def __init__(self) -> None:
        self.kept: dict[int, Tensor] = {}  # held, so that ids stay unique

    def pack(self, tensor: Tensor) -> Tensor:
        self.kept[id(tensor)] = tensor
        return tensor

    @property
    def bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.kept.values())


def measure(loss: Callable[[], Tensor]) -> tuple[int, int]:
    """(FLOPs of forward + backward, bytes autograd saves for the backward).

    On the meta device attention runs PyTorch's math path, which keeps the (N, N) attention
    weights; a GPU runs flash or memory-efficient attention, which keeps only q, k, v, the
    output and a log-sum-exp per query. Attention is weighed as on a GPU."""
    saved = SavedTensors()

    def attention(q: Tensor, k: Tensor, v: Tensor, *args, **kwargs) -> Tensor:
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            out = sdpa(q, k, v, *args, **kwargs)
        for tensor in (q, k, v, out, q.new_zeros(q.shape[:-1], dtype=torch.float32)):
            saved.pack(tensor)
        return out

    sdpa = F.scaled_dot_product_attention
    with (
        FlopCounterMode(display=False) as counter,
        patch.object(F, "scaled_dot_product_attention", attention),
    ):
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda tensor: tensor):
            value = loss()
        value.backward()
    return counter.get_total_flops(), saved.bytes


def largest_canvas(recipe: TrainRecipe) -> tuple[int, int]:
    return max((tuple(canvas) for canvas in recipe.canvases), key=lambda wh: wh[0] * wh[1])


def autoencoder_step(model: SoravidModel, recipe: TrainRecipe) -> dict:
    stage = recipe.autoencoder
    width, height = largest_canvas(recipe)
    video = torch.zeros(stage.batch_size, 3, stage.clip_frames, height, width, device="meta")
    flops, saved = measure(lambda: autoencoder_loss(model.autoencoder(video), video, 1.0))
    trained = sum(p.numel() for p in model.autoencoder.parameters())
    return {"flops": flops, "activations": saved, "state": 16 * trained, "tokens": 0}


def dit_step(model: SoravidModel, recipe: TrainRecipe) -> dict:
    stage, config = recipe.dit, model.config
    width, height = largest_canvas(recipe)
    frames = model.autoencoder.pixel_frames(config.window_frames)
    video = torch.zeros(stage.batch_size, 3, frames, height, width, device="meta")
    model.autoencoder.requires_grad_(False)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        latent = model.autoencoder.encode(video)  # (B, C, T, h, w)
    encode_flops = counter.get_total_flops()
    t = torch.zeros(latent.shape[0], latent.shape[2], device="meta")
    captions = ["a big red circle moving left on a black background"] * stage.batch_size

    def loss() -> Tensor:
        text = model.encode_text(captions)
        return flow_matching_loss(lambda x, s: model.velocity(x, s, text), latent, latent, t)

    flops, saved = measure(loss)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.autoencoder.parameters())
    pt, ph, pw = config.dit.patch
    tokens = (latent.shape[2] // pt) * (latent.shape[3] // ph) * (latent.shape[4] // pw)
    return {
        "flops": flops + encode_flops,
        "activations": saved,
        "state": 16 * trained + 4 * trained + 4 * frozen,  # + EMA + frozen autoencoder
        "tokens": tokens,
        "formula": dit_formula(model, tokens) * stage.batch_size + encode_flops,
    }


def dit_formula(model: SoravidModel, tokens: int) -> float:
    """6 N per token for the DiT's weights, plus its attention: 12 x layers x tokens x width
    per token (QK^T and AV, forward and backward)."""
    dit = model.config.dit
    weights = sum(p.numel() for p in model.dit.parameters())
    return 6 * weights * tokens + 12 * dit.depth * tokens**2 * dit.width


def render_seconds(recipe: TrainRecipe, batch_size: int, frames: int) -> float:
    """Wall time to render one micro-batch at the largest canvas on one CPU core (measured)."""
    width, height = largest_canvas(recipe)
    clips = ShapesClips([[width, height]], recipe.fps, seed=0)
    clips.batch(1, frames)  # warm up
    start = time.perf_counter()
    clips.batch(batch_size, frames)
    return time.perf_counter() - start


def report(name: str, mfu: float) -> None:
    recipe = RECIPES[name]
    with torch.device("meta"):
        model = build_model(recipe.model, CAPTION_VOCABULARY)
    counts = model.parameter_counts()
    width, height = largest_canvas(recipe)
    print(
        f"{name}: model {recipe.model}, {counts['total'] / 1e6:.1f}M parameters "
        f"(DiT {counts['dit'] / 1e6:.1f}M, text {counts['text_encoder'] / 1e6:.1f}M, "
        f"autoencoder {counts['autoencoder'] / 1e6:.1f}M); canvas up to {width}x{height}"
    )
    dit_frames = model.autoencoder.pixel_frames(model.config.window_frames)
    stages = (
        ("autoencoder", autoencoder_step(model, recipe), recipe.autoencoder.clip_frames),
        ("dit", dit_step(model, recipe), dit_frames),
    )
    for stage, cost, frames in stages:
        hyper = getattr(recipe, stage)
        compute = cost["flops"] / (H100_BF16 * mfu)
        render = render_seconds(recipe, hyper.batch_size, frames)
        memory = (cost["state"] + cost["activations"]) / 2**30
        formula = f" (formula {cost['formula'] / 1e12:.2f})" if "formula" in cost else ""
        tokens = f", {cost['tokens']} tokens per clip" if cost["tokens"] else ""
        hours = hyper.steps * max(compute, render) / 3600
        print(
            f"  {stage}: batch {hyper.batch_size} x {frames} frames{tokens}; "
            f"{cost['flops'] / 1e12:.2f} TFLOP per micro-batch{formula}; "
            f"GPU {compute * 1e3:.0f} ms at {mfu:.0%} MFU, rendering {render * 1e3:.0f} ms; "
            f"{hyper.steps} steps = {hours:.1f} h; memory {memory:.1f} GiB "
            f"(states {cost['state'] / 2**30:.2f}, activations {cost['activations'] / 2**30:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", default=["tiny", "shapes", "S", "B"])
    parser.add_argument("--mfu", type=float, default=0.3, help="share of the peak achieved")
    args = parser.parse_args()
    for name in args.recipes:
        report(name, args.mfu)


if __name__ == "__main__":
    main()
