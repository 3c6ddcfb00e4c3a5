"""The causal video autoencoder: shapes, causality, streaming decode, normalisation, padding."""

from __future__ import annotations

import pytest
import torch

from soravid.models.autoencoder import AutoencoderConfig, VideoAutoencoder

TINY = AutoencoderConfig(base_channels=4, latent_channels=4)


def make_autoencoder(config: AutoencoderConfig = TINY) -> VideoAutoencoder:
    torch.manual_seed(0)
    return VideoAutoencoder(config).eval()


def random_video(frames: int, height: int = 16, width: int = 24) -> torch.Tensor:
    return (
        torch.rand(2, 3, frames, height, width, generator=torch.Generator().manual_seed(1)) * 2 - 1
    )


@pytest.mark.parametrize(
    ("config", "frames", "latent_shape"),
    [
        (TINY, 9, (2, 4, 3, 4, 6)),
        (TINY, 1, (2, 4, 1, 4, 6)),
        (AutoencoderConfig(4, 4, patch_size=2), 9, (2, 4, 3, 4, 6)),
        (AutoencoderConfig(4, 4, spatial_factor=8, patch_size=4), 5, (2, 4, 2, 2, 3)),
        (AutoencoderConfig(4, 6, spatial_factor=8, temporal_factor=2), 7, (2, 6, 4, 2, 3)),
        (AutoencoderConfig(4, 3, spatial_factor=2, temporal_factor=1, padding="circular"), 3, None),
    ],
)
def test_encode_and_decode_shapes(config, frames, latent_shape) -> None:
    autoencoder = make_autoencoder(config)
    video = random_video(frames)
    with torch.no_grad():
        latent = autoencoder.encode(video)
        expected = latent_shape or (2, 3, 3, 8, 12)
        assert latent.shape == expected
        assert autoencoder.latent_frames(frames) == expected[2]
        assert autoencoder.decode(latent).shape == video.shape
        assert autoencoder(video).shape == video.shape


def test_rejects_a_frame_count_that_is_not_one_modulo_the_temporal_factor() -> None:
    with pytest.raises(ValueError, match="frames = 1 mod 4"):
        make_autoencoder().encode(random_video(8))


def test_config_rejects_factors_that_are_not_powers_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        AutoencoderConfig(spatial_factor=3)


@pytest.mark.parametrize("config", [TINY, AutoencoderConfig(4, 4, patch_size=2)])
def test_encoder_is_causal(config: AutoencoderConfig) -> None:
    """Latent frame j covers frames up to 4j: changing later frames leaves it unchanged."""
    autoencoder = make_autoencoder(config)
    video = random_video(13)
    changed = video.clone()
    changed[:, :, 5:] = torch.rand_like(changed[:, :, 5:])  # frames of latent 2 onwards
    with torch.no_grad():
        before, after = autoencoder.encode(video), autoencoder.encode(changed)
    assert torch.equal(before[:, :, :2], after[:, :, :2])
    assert not torch.allclose(before[:, :, 2:], after[:, :, 2:])


def test_first_latent_frame_sees_only_the_first_frame() -> None:
    autoencoder = make_autoencoder()
    video = random_video(5)
    with torch.no_grad():
        alone = autoencoder.encode(video[:, :, :1])
        together = autoencoder.encode(video)
    # Equal up to float rounding: the convolutions sum in another order for another length.
    torch.testing.assert_close(alone[:, :, 0], together[:, :, 0], atol=1e-5, rtol=0)


def test_decoder_is_causal() -> None:
    """Decoded frame f depends only on latent frames up to ceil(f / 4)."""
    autoencoder = make_autoencoder()
    latent = torch.randn(1, 4, 5, 4, 6)
    changed = latent.clone()
    changed[:, :, 3:] = torch.randn_like(changed[:, :, 3:])
    with torch.no_grad():
        before, after = autoencoder.decode(latent), autoencoder.decode(changed)
    assert torch.equal(before[:, :, :9], after[:, :, :9])  # frames 0..8 = latents 0..2
    assert not torch.allclose(before[:, :, 9:], after[:, :, 9:])


@pytest.mark.parametrize("chunk_frames", [1, 2, 3, 10])
def test_streamed_decode_matches_a_whole_decode(chunk_frames: int) -> None:
    autoencoder = make_autoencoder()
    latent = torch.randn(1, 4, 10, 4, 6)
    with torch.no_grad():
        whole = autoencoder.decode(latent)
        chunks = list(autoencoder.decode_stream(latent, chunk_frames))
    assert len(chunks) == -(-10 // chunk_frames)
    torch.testing.assert_close(torch.cat(chunks, dim=2), whole, atol=1e-5, rtol=0)


def test_decode_cache_needs_only_a_bounded_history() -> None:
    autoencoder = make_autoencoder()
    latent = torch.randn(1, 4, 12, 4, 6)
    keep = autoencoder.decoder.history
    with torch.no_grad():
        whole = autoencoder.decode(latent)
        cache = autoencoder.decode_cache(latent[:, :, 10 - keep : 10])
        tail = autoencoder.decode(latent[:, :, 10:], cache)
    assert tail.shape[2] == 8
    torch.testing.assert_close(tail, whole[:, :, -8:], atol=1e-5, rtol=0)


def test_latent_stats_normalise_latents_without_changing_reconstructions() -> None:
    autoencoder = make_autoencoder()
    video = random_video(9)
    with torch.no_grad():
        reconstruction = autoencoder(video)
        autoencoder.set_latent_stats(autoencoder.encode(video))
        latent = autoencoder.encode(video)
        torch.testing.assert_close(autoencoder(video), reconstruction, atol=1e-4, rtol=1e-4)
    dims = (0, 2, 3, 4)
    torch.testing.assert_close(latent.mean(dims), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(latent.std(dims), torch.ones(4), atol=1e-4, rtol=0)
    assert "latent_std" in autoencoder.state_dict()


@pytest.mark.parametrize("padding", ["replicate", "circular"])
def test_padding_invents_no_border(padding: str) -> None:
    """A flat colour stays flat through encode and decode: no edge is made up at the border."""
    config = AutoencoderConfig(base_channels=4, latent_channels=4, padding=padding)
    autoencoder = make_autoencoder(config)
    video = torch.full((1, 3, 5, 16, 24), 0.3)
    with torch.no_grad():
        latent = autoencoder.encode(video)
        decoded = autoencoder.decode(latent)
    spread = latent.amax(dim=(3, 4)) - latent.amin(dim=(3, 4))
    assert spread.abs().max() < 1e-5
    assert (decoded.amax(dim=(3, 4)) - decoded.amin(dim=(3, 4))).abs().max() < 1e-5


def test_flat_colours_reach_the_latent() -> None:
    """Two flat clips of different colours encode differently: a norm over each frame's pixels
    would map every flat clip to the same latent, and the decoder could not know its colour."""
    autoencoder = make_autoencoder()
    red, navy = torch.zeros(1, 3, 5, 16, 24), torch.zeros(1, 3, 5, 16, 24)
    red[:, 0], navy[:, 2] = 0.8, -0.6
    with torch.no_grad():
        assert not torch.allclose(autoencoder.encode(red), autoencoder.encode(navy), atol=1e-3)
