"""Text conditioning: a word tokenizer with a saved vocabulary and a small transformer encoder.

The rest of soravid sees text only as a `TextEmbedding` (token embeddings, their mask and a
pooled vector), so a bigger pretrained encoder could replace `Tokenizer` + `TextEncoder` later
without touching the DiT. The empty caption (all padding) is the unconditional input for
classifier-free guidance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from soravid.models.layers import Mlp, SelfAttention, key_mask, masked_mean
from soravid.words import split_words

PAD_ID, UNK_ID = 0, 1


class Tokenizer:
    """Maps words to ids: 0 is padding, 1 an unknown word, then the vocabulary in its order."""

    def __init__(self, vocabulary: list[str]) -> None:
        words = list(dict.fromkeys(word.lower() for word in vocabulary))
        bad = [word for word in words if split_words(word) != [word]]
        if bad:
            raise ValueError(f"vocabulary entries are not single words: {bad}")
        self.vocabulary = words
        self.ids = {word: index + 2 for index, word in enumerate(words)}

    def __len__(self) -> int:
        return len(self.vocabulary) + 2

    def unknown_words(self, text: str) -> list[str]:
        """Words of `text` outside the vocabulary, each once, in order of appearance."""
        return list(dict.fromkeys(w for w in split_words(text) if w not in self.ids))

    def encode(self, texts: list[str], max_tokens: int) -> tuple[Tensor, Tensor]:
        """Token ids (B, max_tokens) long and mask (B, max_tokens) bool; longer texts are cut."""
        ids = torch.full((len(texts), max_tokens), PAD_ID, dtype=torch.long)
        for row, text in enumerate(texts):
            tokens = [self.ids.get(word, UNK_ID) for word in split_words(text)][:max_tokens]
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        return ids, ids != PAD_ID


@dataclass
class TextEncoderConfig:
    width: int = 128
    depth: int = 2
    heads: int = 4
    max_tokens: int = 24  # longer prompts are cut; shapes-world captions have about 10 words


@dataclass
class TextEmbedding:
    """What the DiT is conditioned on: tokens (B, L, D), mask (B, L) bool, pooled (B, D)."""

    tokens: Tensor
    mask: Tensor
    pooled: Tensor

    def first(self, count: int) -> TextEmbedding:
        """The embedding of the first `count` texts of the batch."""
        return TextEmbedding(self.tokens[:count], self.mask[:count], self.pooled[:count])


class TextBlock(nn.Module):
    """A pre-norm transformer encoder block."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, 4 * width)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), mask=mask)
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """Token ids -> contextual token embeddings and their masked mean."""

    def __init__(self, config: TextEncoderConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(vocab_size, config.width)
        self.position_embedding = nn.Parameter(torch.zeros(1, config.max_tokens, config.width))
        self.blocks = nn.ModuleList(
            TextBlock(config.width, config.heads) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.02)

    def forward(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """ids, mask (B, L) -> tokens (B, L, D), pooled (B, D); pooled is 0 for an empty text."""
        x = self.token_embedding(ids) + self.position_embedding[:, : ids.shape[1]]
        attention_mask = key_mask(mask)
        for block in self.blocks:
            x = block(x, attention_mask)
        x = self.norm(x)
        return x, masked_mean(x, mask)
