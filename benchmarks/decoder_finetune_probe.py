"""Probe (run by hand): fine-tune a model's decoder on clean latents of its frozen encoder,
gray backgrounds and small objects oversampled; writes a model file.

    python benchmarks/decoder_finetune_probe.py SRC OUT STEPS LR GRAY_P SMALL_P EDGE_WEIGHT
    (session 23: 1000 3e-4 0.5 0.7 8)
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

from soravid.training.recipes import TrainRecipe
from soravid.training.trainer import autoencoder_loss, detail_crops
from soravid.weights import TRAINING_KEY, load_model, read_metadata, save_model
from soravid.world import render_clip, sample_attributes
from soravid.world.spec import OBJECT_COLOURS, WorldAttributes

torch.manual_seed(0)
src, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
lr, gray_p, small_p, edge_w = (float(a) for a in sys.argv[4:8])
model = load_model(Path(src))
metadata = {k: v for k, v in read_metadata(Path(src)).items() if k == TRAINING_KEY}
model.requires_grad_(False)
ae = model.autoencoder
dec = ae.decoder
dec.requires_grad_(True)
dec.train()
rng = np.random.default_rng(5)
canvases = TrainRecipe().canvases  # the recipes' four, the default first
opt = torch.optim.AdamW(dec.parameters(), lr=lr, weight_decay=0.0)
t0 = time.time()
losses = []
for step in range(steps):
    w, h = canvases[rng.choice(4, p=[0.5, 1 / 6, 1 / 6, 1 / 6])]
    clips = []
    for _ in range(8):
        a = sample_attributes(rng)
        bg = "gray" if rng.random() < gray_p else a.background
        colour = (
            a.colour if a.colour != bg else str(rng.choice([c for c in OBJECT_COLOURS if c != bg]))
        )
        size = "small" if rng.random() < small_p else a.size
        a = WorldAttributes(bg, colour, a.shape, size, a.motion)
        clips.append(render_clip(a, w, h, 8, 9 / 8, int(rng.integers(2**31))))
    video = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
    video = video[:, :, :9]
    video = detail_crops(video, 48, 0.7, rng)
    with torch.no_grad():
        z = ae.encode(video)
    loss = autoencoder_loss(ae.decode(z), video, edge_w)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 50 == 0:
        print(step, np.mean(losses[-50:]), f"{time.time() - t0:.0f}s", flush=True)
    if (step and step % 200 == 0) or step == steps - 1:
        save_model(model, Path(out), metadata, dtype=torch.float16)
print("saved", out)
