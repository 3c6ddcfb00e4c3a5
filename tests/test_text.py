"""The tokenizer and the text encoder."""

from __future__ import annotations

import pytest
import torch

from soravid.models.text import PAD_ID, UNK_ID, TextEncoder, TextEncoderConfig, Tokenizer

VOCABULARY = ["a", "red", "circle", "moving", "left"]


def test_tokenizer_lower_cases_words_and_maps_unknown_ones() -> None:
    ids, mask = Tokenizer(VOCABULARY).encode(["A RED, circle!", "a purple circle"], max_tokens=5)
    assert ids.tolist() == [[2, 3, 4, PAD_ID, PAD_ID], [2, UNK_ID, 4, PAD_ID, PAD_ID]]
    assert mask.tolist() == [[True] * 3 + [False] * 2] * 2
    assert ids.dtype == torch.long and mask.dtype == torch.bool


def test_tokenizer_cuts_long_texts_and_encodes_the_empty_one_as_padding() -> None:
    ids, mask = Tokenizer(VOCABULARY).encode(["a red circle moving left", ""], max_tokens=3)
    assert ids.tolist() == [[2, 3, 4], [PAD_ID] * 3]
    assert not mask[1].any()


def test_unknown_words_are_reported_once_in_order() -> None:
    tokenizer = Tokenizer(VOCABULARY)
    assert tokenizer.unknown_words("A purple ball, a PURPLE circle") == ["purple", "ball"]
    assert tokenizer.unknown_words("a red circle") == []


def test_vocabulary_is_deduplicated_and_must_be_single_words() -> None:
    tokenizer = Tokenizer(["Red", "red", "ball"])
    assert tokenizer.vocabulary == ["red", "ball"] and len(tokenizer) == 4
    with pytest.raises(ValueError, match="not single words"):
        Tokenizer(["moving left"])


def make_encoder() -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(TextEncoderConfig(width=16, depth=2, heads=2, max_tokens=8), 7).eval()


def test_encoder_shapes_and_empty_caption() -> None:
    ids, mask = Tokenizer(VOCABULARY).encode(["a red circle", ""], max_tokens=8)
    with torch.no_grad():
        tokens, pooled = make_encoder()(ids, mask)
    assert tokens.shape == (2, 8, 16) and pooled.shape == (2, 16)
    assert torch.isfinite(tokens).all()
    assert torch.equal(pooled[1], torch.zeros(16))  # the empty caption pools to zero
    assert pooled[0].abs().sum() > 0


def test_padding_does_not_change_the_real_tokens() -> None:
    tokenizer, encoder = Tokenizer(VOCABULARY), make_encoder()
    with torch.no_grad():
        short_tokens, short_pooled = encoder(*tokenizer.encode(["a red circle"], max_tokens=3))
        long_tokens, long_pooled = encoder(*tokenizer.encode(["a red circle"], max_tokens=8))
    torch.testing.assert_close(long_tokens[:, :3], short_tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(long_pooled, short_pooled, atol=1e-5, rtol=1e-5)
