"""The DiT: shapes at any grid, per-frame times, text masking, rotary positions, initialisation."""

from __future__ import annotations

import pytest
import torch

from soravid.models.dit import DiT, DiTConfig, RoPE3D, rotate

CONFIG = DiTConfig(latent_channels=4, width=24, depth=2, heads=2, mlp_ratio=2.0, text_width=16)


def make_dit(config: DiTConfig = CONFIG, randomise: bool = True) -> DiT:
    """A DiT; randomise fills the adaLN-Zero weights so the output depends on the input."""
    torch.manual_seed(0)
    dit = DiT(config).eval()
    if randomise:
        with torch.no_grad():
            for parameter in dit.parameters():
                if not parameter.any():
                    parameter.normal_(0.0, 0.1)
    return dit


def text_inputs(batch: int = 2, length: int = 5) -> tuple[torch.Tensor, ...]:
    text = torch.randn(batch, length, 16)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    mask[0, :3] = True  # row 0 has three words; row 1 is the empty caption
    return text, mask, torch.randn(batch, 16)


@pytest.mark.parametrize(
    ("frames", "height", "width"),
    [(3, 8, 12), (7, 4, 16), (1, 10, 6), (2, 6, 6)],  # default, other aspects and durations
)
def test_velocity_has_the_latent_shape_at_any_grid(frames: int, height: int, width: int) -> None:
    x = torch.randn(2, 4, frames, height, width)
    with torch.no_grad():
        velocity = make_dit()(x, torch.rand(2, frames), *text_inputs())
    assert velocity.shape == x.shape
    assert torch.isfinite(velocity).all()


def test_temporal_patches() -> None:
    config = DiTConfig(4, patch=(2, 2, 2), width=24, depth=1, heads=2, text_width=16)
    x = torch.randn(2, 4, 4, 8, 8)
    with torch.no_grad():
        assert make_dit(config)(x, torch.rand(2, 4), *text_inputs()).shape == x.shape


def test_a_grid_the_patch_does_not_divide_is_refused() -> None:
    with pytest.raises(ValueError, match="not divisible by the patch"):
        make_dit()(torch.randn(1, 4, 2, 5, 8), torch.rand(1, 2), *text_inputs(1))


def test_a_fresh_dit_predicts_zero_velocity() -> None:
    """adaLN-Zero: every block starts as the identity and the output layer at zero."""
    x = torch.randn(2, 4, 3, 8, 8)
    with torch.no_grad():
        assert not make_dit(randomise=False)(x, torch.rand(2, 3), *text_inputs()).any()


def test_each_frame_has_its_own_time() -> None:
    dit, x, text = make_dit(), torch.randn(1, 4, 3, 4, 4), text_inputs(1)
    with torch.no_grad():
        same = dit(x, torch.tensor([[0.5, 0.5, 0.5]]), *text)
        first_clean = dit(x, torch.tensor([[0.0, 0.5, 0.5]]), *text)
    assert not torch.allclose(same[:, :, 0], first_clean[:, :, 0])


def test_padded_text_tokens_are_ignored_and_the_text_matters() -> None:
    dit, x, t = make_dit(), torch.randn(2, 4, 2, 4, 4), torch.rand(2, 2)
    text, mask, pooled = text_inputs()
    altered = text.clone()
    altered[:, 3:] = torch.randn_like(altered[:, 3:])  # only padding changes
    with torch.no_grad():
        reference = dit(x, t, text, mask, pooled)
        torch.testing.assert_close(dit(x, t, altered, mask, pooled), reference)
        other_words = dit(x, t, torch.randn_like(text), mask, pooled)
    assert not torch.allclose(other_words[0], reference[0])


def test_rotary_positions_depend_only_on_offsets() -> None:
    """q at p and k at p' score the same as q at p+d and k at p'+d: attention sees offsets."""
    rope = RoPE3D(head_dim=12)
    cos, sin = rope.angles((4, 5, 6))  # tokens time-major: index = (t * 5 + y) * 6 + x
    q, k = torch.randn(12), torch.randn(12)

    def score(query_index: int, key_index: int) -> torch.Tensor:
        rq = rotate(q.expand(1, 1, 120, 12), cos, sin)[0, 0, query_index]
        rk = rotate(k.expand(1, 1, 120, 12), cos, sin)[0, 0, key_index]
        return rq @ rk

    def index(t: int, y: int, x: int) -> int:
        return (t * 5 + y) * 6 + x

    near = score(index(0, 1, 2), index(1, 0, 4))
    shifted = score(index(2, 3, 3), index(3, 2, 5))
    torch.testing.assert_close(near, shifted, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(near, score(index(0, 1, 2), index(2, 0, 4)))


def test_head_size_must_split_over_three_axes() -> None:
    with pytest.raises(ValueError, match="multiple of 6"):
        DiTConfig(width=32, heads=2)


def test_without_cross_attention_the_pooled_text_conditions() -> None:
    """adaLN-only conditioning: no cross-attention weights, text tokens ignored, pooled text
    changes the velocity."""
    config = DiTConfig(4, width=24, depth=2, heads=2, text_width=16, cross_attention=False)
    dit = make_dit(config)
    assert not any("cross" in name or "null_text" in name for name, _ in dit.named_parameters())
    x, t = torch.randn(2, 4, 3, 8, 8), torch.rand(2, 3)
    text, mask, pooled = text_inputs()
    with torch.no_grad():
        velocity = dit(x, t, text, mask, pooled)
        assert torch.equal(velocity, dit(x, t, torch.randn_like(text), mask, pooled))
        assert not torch.allclose(velocity, dit(x, t, text, mask, torch.randn_like(pooled)))
