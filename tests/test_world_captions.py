"""Captions: canonical form, every synonym of the contract, any word order, unknown words."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from soravid.world.captions import (
    CAPTION_VOCABULARY,
    canonical_caption,
    parse_caption,
    random_caption,
    split_words,
)
from soravid.world.spec import (
    BACKGROUND_COLOURS,
    MOTIONS,
    OBJECT_COLOURS,
    SHAPES,
    SIZES,
    WorldAttributes,
    sample_attributes,
)

# The contract's synonym table, written out by hand (not taken from the code under test).
SHAPE_SYNONYMS = {"circle": ["ball", "disc", "dot"], "square": ["box", "block"]}
SIZE_SYNONYMS = {"large": ["big"], "small": ["little", "tiny"]}
MOTION_FORMS = [
    "moving {}",
    "going {}",
    "drifting {}",
    "sliding {}",
    "moving to the {}",
    "heading {}",
]
MOTION_SYNONYMS = {
    "bouncing": ["bouncing", "bouncing around", "ricocheting"],
    "still": ["still", "not moving", "standing still", "motionless"],
}
BACKGROUND_FORMS = [
    "on a {} background",
    "over a {} background",
    "against a {} background",
    "on {}",
]


def parse(text: str) -> WorldAttributes:
    parsed = parse_caption(text)
    assert parsed.unknown_words == [], text
    return parsed.attributes


def all_attributes() -> list[WorldAttributes]:
    combos = itertools.product(BACKGROUND_COLOURS, OBJECT_COLOURS, SHAPES, SIZES, MOTIONS)
    return [WorldAttributes(*c) for c in combos if c[0] != c[1]]


def test_canonical_caption_reads_as_the_contract_says() -> None:
    attrs = WorldAttributes("black", "red", "circle", "large", "moving right")
    assert canonical_caption(attrs) == "a large red circle moving right on a black background"


def test_every_canonical_caption_parses_back() -> None:
    for attrs in all_attributes():
        assert parse(canonical_caption(attrs)) == attrs


@pytest.mark.parametrize(
    ("word", "shape"), [(w, s) for s, words in SHAPE_SYNONYMS.items() for w in words]
)
def test_shape_synonyms(word: str, shape: str) -> None:
    assert parse(f"a red {word}").shape == shape


@pytest.mark.parametrize(
    ("word", "size"), [(w, s) for s, words in SIZE_SYNONYMS.items() for w in words]
)
def test_size_synonyms(word: str, size: str) -> None:
    assert parse(f"a {word} red circle").size == size


def test_grey_is_gray() -> None:
    assert parse("a red circle on a grey background").background == "gray"
    assert parse("a red circle on grey").background == "gray"


@pytest.mark.parametrize("form", MOTION_FORMS)
@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
def test_straight_motion_synonyms(form: str, direction: str) -> None:
    assert parse(f"a red circle {form.format(direction)}").motion == f"moving {direction}"


@pytest.mark.parametrize(
    ("phrase", "motion"), [(p, m) for m, phrases in MOTION_SYNONYMS.items() for p in phrases]
)
def test_bouncing_and_still_synonyms(phrase: str, motion: str) -> None:
    assert parse(f"a red circle {phrase} on a black background").motion == motion


@pytest.mark.parametrize("form", BACKGROUND_FORMS)
@pytest.mark.parametrize("background", BACKGROUND_COLOURS)
def test_background_synonyms(form: str, background: str) -> None:
    colour = "red"
    attrs = parse(f"a {colour} circle {form.format(background)}")
    assert (attrs.colour, attrs.background) == (colour, background)


def test_white_can_be_the_object_or_the_background() -> None:
    assert parse("a white circle on black") == WorldAttributes("black", "white", "circle")
    assert parse("a red circle on white") == WorldAttributes("white", "red", "circle")
    assert parse("white background, red ball") == WorldAttributes("white", "red", "circle")


def test_case_and_article_and_punctuation_do_not_matter() -> None:
    expected = WorldAttributes("navy", "yellow", "triangle", "small", "bouncing")
    for text in (
        "A SMALL YELLOW TRIANGLE BOUNCING ON A NAVY BACKGROUND",
        "small yellow triangle bouncing on a navy background",
        "The small yellow triangle, bouncing, on a navy background.",
        "An Small Yellow Triangle Bouncing On Navy!",
    ):
        assert parse(text) == expected


def test_every_word_order_of_the_parts() -> None:
    expected = WorldAttributes("gray", "orange", "square", "large", "moving up")
    parts = ["big", "orange box", "heading up", "against a grey background"]
    for order in itertools.permutations(parts):
        assert parse(" ".join(order)) == expected
        assert parse("a " + ", ".join(order)) == expected


def test_left_out_parts_are_none() -> None:
    assert parse("a red circle") == WorldAttributes(colour="red", shape="circle")
    assert parse("a big ball bouncing") == WorldAttributes(
        shape="circle", size="large", motion="bouncing"
    )
    assert parse("") == WorldAttributes()


def test_unknown_words_are_reported_in_order() -> None:
    parsed = parse_caption("a purple dragon slowly moving right on a black background")
    assert parsed.unknown_words == ["purple", "dragon", "slowly"]
    assert parsed.attributes == WorldAttributes("black", motion="moving right")


def test_contradicting_and_impossible_words_are_reported() -> None:
    parsed = parse_caption("a red blue circle square")
    assert parsed.attributes == WorldAttributes(colour="red", shape="circle")
    assert parsed.unknown_words == ["blue", "square"]
    # gray is a background colour only; an object cannot share its background's colour
    assert parse_caption("a gray circle").unknown_words == ["gray"]
    assert parse_caption("a white circle on white").attributes.background is None


def test_split_words_lower_cases_and_drops_punctuation() -> None:
    assert split_words("A big, RED ball!  (bouncing)") == ["a", "big", "red", "ball", "bouncing"]


def test_vocabulary_holds_every_word_of_every_caption() -> None:
    table_words = {"circle", "ball", "disc", "dot", "square", "box", "block", "large", "big"}
    table_words |= {"small", "little", "tiny", "gray", "grey", "moving", "going", "drifting"}
    table_words |= {"sliding", "to", "the", "heading", "bouncing", "around", "ricocheting"}
    table_words |= {"still", "not", "standing", "motionless", "on", "over", "against", "a"}
    table_words |= {"background", "left", "right", "up", "down", "triangle"}
    table_words |= set(OBJECT_COLOURS) | set(BACKGROUND_COLOURS)
    assert table_words <= set(CAPTION_VOCABULARY)
    rng = np.random.default_rng(0)
    for _ in range(300):
        caption = random_caption(sample_attributes(rng), rng, drop_prob=0.3)
        assert set(split_words(caption)) <= set(CAPTION_VOCABULARY), caption


def test_random_captions_parse_back_to_what_they_kept() -> None:
    rng = np.random.default_rng(1)
    captions = set()
    for _ in range(500):
        attrs = sample_attributes(rng)
        caption = random_caption(attrs, rng)
        captions.add(caption)
        assert parse(caption) == attrs, caption
    assert len(captions) > 450  # paraphrases, not a few fixed strings


def test_random_captions_leave_out_optional_parts() -> None:
    rng = np.random.default_rng(2)
    attrs = WorldAttributes("black", "red", "circle", "large", "still")
    parsed = [parse(random_caption(attrs, rng, drop_prob=0.5)) for _ in range(200)]
    for name in ("size", "motion", "background"):
        values = {getattr(p, name) for p in parsed}
        assert values == {None, getattr(attrs, name)}
    assert all(p.colour == "red" and p.shape == "circle" for p in parsed)


def test_random_caption_without_paraphrase_is_canonical() -> None:
    rng = np.random.default_rng(3)
    attrs = WorldAttributes("white", "blue", "triangle", "small", "moving down")
    assert random_caption(attrs, rng, paraphrase=False) == canonical_caption(attrs)
