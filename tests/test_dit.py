"""The DiT: shapes at any grid, per-frame times, text masking, rotary positions, initialisation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from soravid.models.dit import EDGE_REACH, DiT, DiTConfig, RoPE3D, edge_distances, rotate
from soravid.models.layers import gelu_tanh
from soravid.models.placement import placement_map, random_centre

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
    rotations = rope.rotations((4, 5, 6))  # tokens time-major: index = (t * 5 + y) * 6 + x
    q, k = torch.randn(12), torch.randn(12)

    def score(query_index: int, key_index: int) -> torch.Tensor:
        rq = rotate(q.expand(1, 1, 120, 12), rotations)[0, 0, query_index]
        rk = rotate(k.expand(1, 1, 120, 12), rotations)[0, 0, key_index]
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


def test_gelu_tanh_is_torchs_tanh_gelu_values_and_gradients() -> None:
    x = torch.linspace(-8, 8, 1001, requires_grad=True)
    reference = torch.nn.functional.gelu(x, approximate="tanh")
    torch.testing.assert_close(gelu_tanh(x), reference, atol=1e-6, rtol=1e-6)
    (ours,) = torch.autograd.grad(gelu_tanh(x).sum(), x)
    (theirs,) = torch.autograd.grad(reference.sum(), x)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_rotate_matches_the_real_rotation_of_channel_pairs() -> None:
    rope = RoPE3D(head_dim=12)
    rotations = rope.rotations((2, 3, 4))
    x = torch.randn(2, 3, 24, 12)
    real, imag = x[..., 0::2], x[..., 1::2]
    cos, sin = rotations.real, rotations.imag
    expected = torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1).flatten(-2)
    torch.testing.assert_close(rotate(x, rotations), expected)
    strided = x.transpose(1, 2).contiguous().transpose(1, 2)  # same values, other strides
    torch.testing.assert_close(rotate(strided, rotations), expected)


CAUSAL = DiTConfig(
    latent_channels=4, width=24, depth=2, heads=2, mlp_ratio=2.0, text_width=16, causal_context=True
)


def test_causal_context_does_not_see_the_frames_being_made() -> None:
    x, t = torch.randn(2, 4, 5, 4, 6), torch.rand(2, 5)
    changed = x.clone()
    changed[:, :, 2:] = torch.randn_like(changed[:, :, 2:])
    text = text_inputs()
    with torch.no_grad():
        for config, context_unchanged in ((CAUSAL, True), (CONFIG, False)):
            dit = make_dit(config)
            before = dit(x, t, *text, context_frames=2)
            after = dit(changed, t, *text, context_frames=2)
            assert torch.allclose(before[:, :, :2], after[:, :, :2]) == context_unchanged
            assert not torch.allclose(before[:, :, 2:], after[:, :, 2:])


@pytest.mark.parametrize("last_context_input", [False, True])
@pytest.mark.parametrize(("context", "made", "height", "width"), [(1, 3, 4, 6), (2, 2, 6, 4)])
def test_cached_context_gives_the_velocity_of_the_whole_window(
    context: int, made: int, height: int, width: int, last_context_input: bool
) -> None:
    dit = make_dit(replace(CAUSAL, last_context_input=last_context_input))
    x, t = torch.randn(2, 4, context + made, height, width), torch.rand(2, context + made)
    text = text_inputs()
    with torch.no_grad():
        whole = dit(x, t, *text, context_frames=context)
        cache = dit.cache_context(x[:, :, :context], t[:, :context], *text)
        after = dit.forward_after(cache, x[:, :, context:], t[:, context:], *text)
        first_row = dit.forward_after(
            cache.first(1), x[:1, :, context:], t[:1, context:], *(part[:1] for part in text)
        )
    torch.testing.assert_close(after, whole[:, :, context:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(first_row, whole[:1, :, context:], atol=1e-5, rtol=1e-5)


def test_each_row_of_a_batch_has_its_own_context_length() -> None:
    dit = make_dit(CAUSAL)
    x, t = torch.randn(2, 4, 4, 4, 4), torch.rand(2, 4)
    text = text_inputs()
    with torch.no_grad():
        mixed = dit(x, t, *text, context_frames=torch.tensor([1, 3]))
        for row, context in ((0, 1), (1, 3)):
            alone = dit(
                x[row : row + 1], t[row : row + 1], *(p[row : row + 1] for p in text), context
            )
            torch.testing.assert_close(mixed[row : row + 1], alone, atol=1e-5, rtol=1e-5)


def test_the_last_context_frame_goes_beside_each_frame_made() -> None:
    """With last_context_input, the frames made read the last context frame at their own
    tokens: zeroing its embedding changes them, not rows without context. Rows of a batch
    each have their own last context frame."""
    dit = make_dit(replace(CONFIG, last_context_input=True))
    x, t, text = torch.randn(2, 4, 4, 4, 4), torch.rand(2, 4), text_inputs()
    context = torch.tensor([0, 2])
    with torch.no_grad():
        given = dit(x, t, *text, context_frames=context)
        dit.last_context_embed.proj.weight.zero_()
        without = dit(x, t, *text, context_frames=context)
    torch.testing.assert_close(given[0], without[0])
    assert not torch.allclose(given[1, :, 2:], without[1, :, 2:])


def test_edge_distances_count_cells_to_each_edge_up_to_the_reach() -> None:
    width = EDGE_REACH + 4
    edges = edge_distances(2, 3, width, torch.device("cpu"))
    assert edges.shape == (1, 4, 2, 3, width)
    left, right, top, bottom = edges[0, :, 1]
    assert left[0, 0] == 0 and right[0, -1] == 0 and top[0, 0] == 0 and bottom[-1, 0] == 0
    assert left[0, 1] == 1 / EDGE_REACH and bottom[0, 0] == 2 / EDGE_REACH
    assert left[0, -1] == 1 and right[0, 0] == 1  # farther than the reach reads as the reach


def test_edge_distance_tells_cells_at_the_walls_from_cells_in_the_middle() -> None:
    """A uniform latent gives every token the same velocity under rotary positions alone; with
    edge_distance the cells near the walls differ. Fresh, the edges add nothing, so a model
    trained without them starts as itself."""
    side = 2 * EDGE_REACH + 8
    x, t, text = torch.zeros(1, 4, 1, side, side), torch.full((1, 1), 0.5), text_inputs(1)
    with torch.no_grad():
        plain = make_dit()(x, t, *text)[0, :, 0, ::2, ::2]  # one cell per 2x2 token
        assert torch.allclose(plain, plain[:, :1, :1].expand_as(plain), atol=1e-5)
        trained = make_dit(CONFIG)
        walls = DiT(replace(CONFIG, edge_distance=True)).eval()
        missing = walls.load_state_dict(trained.state_dict(), strict=False).missing_keys
        assert missing == ["edge_embed.proj.weight"]
        x_random = torch.randn_like(x)
        torch.testing.assert_close(walls(x_random, t, *text), trained(x_random, t, *text))
        walls = make_dit(replace(CONFIG, edge_distance=True))
        velocity = walls(x, t, *text)[0, :, 0, ::2, ::2]  # (C, h/2, w/2)
    centre = side // 4  # in tokens
    assert not torch.allclose(velocity[:, 0, 0], velocity[:, centre, centre], atol=1e-3)


def test_only_a_causal_dit_caches_context() -> None:
    with pytest.raises(ValueError, match="causal_context"):
        make_dit().cache_context(torch.randn(2, 4, 1, 4, 4), torch.zeros(2, 1), *text_inputs())


def test_a_placement_map_steers_the_tokens_it_covers() -> None:
    """With placement, the map changes the velocity; an all-zero map is no map; a DiT without
    placement refuses one."""
    config = DiTConfig(4, width=24, depth=2, heads=2, text_width=16, placement=True)
    dit = make_dit(config)
    x, t = torch.randn(2, 4, 2, 8, 8), torch.rand(2, 2)
    here = placement_map(torch.tensor([[4.0, 4.0], [20.0, 12.0]]), (8, 8), 4, frames=2)
    assert here.shape == (2, 1, 2, 8, 8) and not here[:, :, 1].any()  # frame 0 only
    text = text_inputs()
    with torch.no_grad():
        plain = dit(x, t, *text)
        assert not torch.allclose(plain, dit(x, t, *text, placement=here))
        assert torch.equal(plain, dit(x, t, *text, placement=torch.zeros_like(here)))
        with pytest.raises(ValueError, match="placement"):
            make_dit()(x, t, *text, placement=here)


def test_placement_maps_peak_at_the_centre_and_wrap_around() -> None:
    maps = placement_map(torch.tensor([[10.0, 6.0], [1.0, 30.0]]), (8, 12), 4)  # 48x32 px
    assert maps.shape == (2, 1, 1, 8, 12)
    assert divmod(int(maps[0].argmax()), 12) == (1, 2)  # pixel (10, 6) is in cell (row 1, col 2)
    corner = maps[1, 0, 0]
    assert corner[7, 0] == corner.max()  # (1, 30) px: the bottom-left cell
    assert corner[0, 0] > 0.1 and corner[7, 11] > 0.1  # it wraps over the top and the left
    assert corner[3, 6] < 1e-6
    rng = np.random.default_rng(0)
    centres = np.array([random_centre(rng, 96, 64, 0.2) for _ in range(200)])
    assert (centres >= 12.8).all() and (centres[:, 0] <= 96 - 12.8).all()
    assert (centres[:, 1] <= 64 - 12.8).all()


@pytest.mark.parametrize("cross_attention", [False, True])
def test_checkpointed_blocks_give_the_same_gradients_and_keep_fewer_activations(
    cross_attention: bool,
) -> None:
    """DiT.checkpoint_blocks trades memory for compute alone: the same velocity and gradients,
    with less saved for the backward pass."""
    config = replace(CONFIG, depth=3, causal_context=True, cross_attention=cross_attention)
    x, t = torch.randn(2, 4, 3, 8, 12), torch.rand(2, 3)
    results = []
    for checkpointed in (False, True):
        dit = make_dit(config).train()
        dit.checkpoint_blocks = checkpointed
        saved_bytes = 0

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            nonlocal saved_bytes
            saved_bytes += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            velocity = dit(x, t, *text_inputs(), context_frames=torch.tensor([1, 0]))
        velocity.square().mean().backward()
        gradients = {name: p.grad for name, p in dit.named_parameters() if p.grad is not None}
        results.append((velocity.detach(), gradients, saved_bytes))
    (plain, plain_grads, plain_bytes), (checked, checked_grads, checked_bytes) = results
    torch.testing.assert_close(checked, plain)
    assert checked_grads.keys() == plain_grads.keys()
    for name, gradient in plain_grads.items():
        torch.testing.assert_close(checked_grads[name], gradient, msg=name)
    assert checked_bytes < plain_bytes / 2
