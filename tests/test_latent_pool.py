"""The pool of encoded training clips: windows cut from it, refreshed oldest first, resumable."""

from __future__ import annotations

import torch

from soravid.training import trainer
from soravid.training.data import CaptionStyle, DataShard, ShapesClips
from soravid.training.latents import LatentPool, object_loss_weight, object_mask
from tests.conftest import make_tiny_model

CANVASES = [[16, 8], [8, 8]]
FRAMES = 5  # pixel frames per clip; the stand-in encoder keeps one latent frame per frame


def encode(video: torch.Tensor) -> torch.Tensor:
    """A stand-in encoder: (B, 3, T, H, W) -> (B, 3, T, H/4, W/4), cheap and deterministic."""
    return torch.nn.functional.avg_pool3d(video, (1, 4, 4))


def make_pool(clips: int = 3, seed: int = 0) -> LatentPool:
    pool = LatentPool(ShapesClips(CANVASES, fps=8, seed=seed), clips, latent_frames=FRAMES)
    pool.fill(encode, FRAMES)
    return pool


def test_fill_encodes_clips_per_canvas() -> None:
    pool = make_pool()
    assert [tuple(latent.shape) for latent in pool.latents] == [(3, 3, 5, 2, 4), (3, 3, 5, 2, 2)]
    assert [len(attributes) for attributes in pool.attributes] == [3, 3]


def test_windows_cut_from_the_start_or_later() -> None:
    pool = make_pool()
    style = CaptionStyle()
    latent, captions = pool.windows(0, 4, frames=2, start_prob=1.0, style=style)
    assert latent.shape == (4, 3, 2, 2, 4) and len(captions) == 4 and all(captions)
    starts = [pool.latents[0][clip, :, :2] for clip in range(3)]
    assert all(any(torch.equal(window, start) for start in starts) for window in latent)
    later, _ = pool.windows(0, 16, frames=2, start_prob=0.0, style=style)
    assert not any(torch.equal(window, start) for window in later for start in starts)


def test_refresh_replaces_the_oldest_clips_of_one_canvas() -> None:
    pool = make_pool()
    before = [latent.clone() for latent in pool.latents]
    pool.refresh(0, 2, encode, FRAMES)
    changed = [not torch.equal(before[0][i], pool.latents[0][i]) for i in range(3)]
    assert changed == [True, True, False] and torch.equal(before[1], pool.latents[1])
    pool.refresh(0, 2, encode, FRAMES)  # wraps round: clip 2, then clip 0 again
    assert pool.oldest == [1, 0]


def test_a_shard_saves_and_restores_its_pool() -> None:
    shard = DataShard(CANVASES, fps=8, seed=0, index=0)
    shard.pool = LatentPool(shard.clips, 3, FRAMES)
    shard.pool.fill(encode, FRAMES)
    saved = shard.state()
    expected = shard.pool.windows(1, 3, frames=2, start_prob=0.5, style=CaptionStyle())
    restored = DataShard(CANVASES, fps=8, seed=5, index=0)
    restored.set_state(saved)
    again = restored.pool.windows(1, 3, frames=2, start_prob=0.5, style=CaptionStyle())
    assert torch.equal(expected[0], again[0]) and expected[1] == again[1]


def test_a_pool_draws_its_clips_with_its_emphasis_and_keeps_it_when_restored() -> None:
    shard = DataShard(CANVASES, fps=8, seed=0, index=0)
    shard.pool = LatentPool(shard.clips, 8, FRAMES, emphasis={"size": {"small": 1.0}})
    shard.pool.fill(encode, FRAMES)
    assert all(a.size == "small" for clips in shard.pool.attributes for a in clips)
    restored = DataShard(CANVASES, fps=8, seed=5, index=0)
    restored.set_state(shard.state())
    restored.pool.refresh(0, 8, encode, FRAMES)  # every clip of canvas 0 drawn anew
    assert all(a.size == "small" for a in restored.pool.attributes[0])


def test_a_shard_saves_its_openings_and_reads_checkpoints_from_before_starts() -> None:
    shard = DataShard(CANVASES, fps=8, seed=0, index=0)
    shard.pool = make_pool()
    shard.openings = LatentPool(shard.clips, 4, latent_frames=1)
    shard.openings.fill(encode, 1)
    saved = shard.state()
    expected = shard.openings.whole_clips(0, 6, CaptionStyle())
    restored = DataShard(CANVASES, fps=8, seed=5, index=0)
    restored.set_state(saved)
    again = restored.openings.whole_clips(0, 6, CaptionStyle())
    assert all(torch.equal(a, b) for a, b in zip(expected[::2], again[::2], strict=True))
    assert expected[1] == again[1] and expected[2].shape == (6, 2)
    del saved["pool"]["starts"]  # a checkpoint from before pools kept where objects start
    restored.set_state(saved)
    assert [tuple(starts.shape) for starts in restored.pool.starts] == [(3, 2), (3, 2)]


def test_object_mask_covers_the_subject_and_its_edge_not_the_background() -> None:
    latent = torch.full((2, 4, 3, 8, 12), -0.5)  # flat background in every frame
    latent[0, :, :, 2:4, 3:5] = 1.5  # clip 0: a 2x2 subject, the same in every frame
    latent[1, :, 1, 5, 9] = 0.2  # clip 1: a faint one-pixel subject in frame 1 only
    mask = object_mask(latent)
    assert mask.shape == (2, 1, 3, 8, 12)
    subject_and_edge = torch.zeros(8, 12)
    subject_and_edge[1:5, 2:6] = 1
    assert torch.equal(mask[0, 0, 0], subject_and_edge)
    faint = torch.zeros(8, 12)
    faint[4:7, 8:11] = 1
    assert torch.equal(mask[1, 0, 1], faint)
    assert mask[1, 0, 0].sum() == 0  # a frame of background alone: nothing stands out
    weight = object_loss_weight(latent, 3.0)
    assert torch.equal(weight, 1.0 + 3.0 * mask)  # 4 on the subject, 1 elsewhere
    assert object_loss_weight(latent, 0.0) is None  # a plain mean


def test_object_mask_finds_a_rendered_object() -> None:
    video, _, starts = ShapesClips([[64, 32]], fps=8, seed=3).render(0, 2, 1)
    latent = encode(video)  # (2, 3, 1, 8, 16): one latent pixel per 4x4 pixels
    mask = object_mask(latent)
    for clip, (x, y) in enumerate(starts.tolist()):
        assert mask[clip, 0, 0, int(y) // 4, int(x) // 4] == 1  # the object's centre
        assert mask[clip, 0, 0].mean() < 0.5  # and not the whole frame


def test_large_pools_encode_in_groups_of_clips(monkeypatch) -> None:
    """Over the elements a CUDA kernel can index, clips are encoded a few at a time, to the
    same latents."""
    model = make_tiny_model()
    video = ShapesClips(CANVASES, fps=8, seed=0).render(0, 5, 9)[0]
    whole = trainer.encoder(model, torch.device("cpu"))(video)
    calls = []
    encode = model.autoencoder.encode
    monkeypatch.setattr(
        model.autoencoder, "encode", lambda clips: calls.append(len(clips)) or encode(clips)
    )
    per_clip = video[0, 0].numel() * model.config.autoencoder.base_channels
    monkeypatch.setattr(trainer, "ENCODE_ELEMENTS", 2 * per_clip)
    grouped = trainer.encoder(model, torch.device("cpu"))(video)
    assert calls == [2, 2, 1]
    torch.testing.assert_close(grouped, whole)
