"""Transformer parts shared by the text encoder and the DiT: attention and the MLP.

Attention masks are boolean with True = "may attend", as `F.scaled_dot_product_attention` reads
them. Queries and keys are normalised per head (QK-norm) so attention logits stay bounded when
training in bfloat16.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

# Rotates queries or keys by their positions: (B, heads, N, head_dim) -> same shape.
PositionFn = Callable[[Tensor], Tensor]


def gelu_tanh(x: Tensor) -> Tensor:
    """GELU, tanh approximation, written as x * sigmoid(2z) (the same function, since
    tanh(z) = 2 sigmoid(2z) - 1): torch's own tanh GELU runs scalar on CPU, 3x slower."""
    return x * torch.sigmoid(x * (1.5957691216057308 + 0.0713548162726009 * x * x))


class Mlp(nn.Module):
    """Two linear layers with a GELU between them."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(gelu_tanh(self.fc1(x)))


# A block's keys and values (B, heads, N, head_dim) each: what tokens after them attend to.
KeysValues = tuple[Tensor, Tensor]


class SelfAttention(nn.Module):
    """Multi-head self-attention, optionally with rotary positions, a mask, and the keys and
    values of earlier tokens (`past`) to attend to as well."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.q_norm = nn.LayerNorm(width // heads)
        self.k_norm = nn.LayerNorm(width // heads)
        self.proj = nn.Linear(width, width)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, rotate: PositionFn | None = None
    ) -> Tensor:
        return self.attend(x, mask, rotate)[0]

    def attend(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        rotate: PositionFn | None = None,
        past: KeysValues | None = None,
    ) -> tuple[Tensor, KeysValues]:
        """x (B, N, width) -> (its output (B, N, width), its own keys and values)."""
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        q, k = self.q_norm(q), self.k_norm(k)
        if rotate is not None:
            q, k = rotate(q), rotate(k)
        keys, values = (
            (k, v) if past is None else (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        )
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)  # (B, heads, N, d)
        return self.proj(rearrange(out, "b h n d -> b n (h d)")), (k, v)


class CrossAttention(nn.Module):
    """Multi-head attention from `x` (B, N, width) to a context (B, L, context_width)."""

    def __init__(self, width: int, context_width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(context_width, 2 * width)
        self.q_norm = nn.LayerNorm(width // heads)
        self.k_norm = nn.LayerNorm(width // heads)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor) -> Tensor:
        """`mask` (B, L) marks the context tokens that may be attended to."""
        q = self.q_norm(rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads))
        k, v = rearrange(self.kv(context), "b l (two h d) -> two b h l d", two=2, h=self.heads)
        k = self.k_norm(k)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


def key_mask(mask: Tensor) -> Tensor:
    """A (B, L) token mask as an SDPA mask (B, 1, 1, L); all-pad rows attend to everything.

    An all-pad row (a dropped caption) would otherwise give NaN; its outputs are masked away
    downstream, so what it attends to does not matter.
    """
    empty = ~mask.any(dim=1, keepdim=True)
    return (mask | empty)[:, None, None, :]


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x (B, L, D) over the tokens where mask (B, L) is True; zeros for empty rows."""
    weights = mask.to(x.dtype)[..., None]
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def zero_init(module: nn.Linear) -> nn.Linear:
    """Zero a linear layer so the residual branch it ends starts as the identity (adaLN-Zero)."""
    nn.init.zeros_(module.weight)
    nn.init.zeros_(module.bias)
    return module


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
