"""Captions of the shapes world: the canonical form, a forgiving parser, and random paraphrases.

A caption is read as a list of lower-case words (`split_words`). The parser matches the longest
known phrase at each position, so "moving to the left" wins over "moving"; articles are filler
anywhere; a colour is the background's when it follows "on"/"over"/"against" or precedes
"background", otherwise the object's. Words it cannot place are returned, not guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from soravid.words import split_words
from soravid.world.spec import (
    BACKGROUND_COLOURS,
    DIRECTIONS,
    OBJECT_COLOURS,
    WorldAttributes,
)

ARTICLES = ("a", "an", "the")
FILLERS = (*ARTICLES, "object")  # words that say nothing: "a red object" leaves the shape out
SHAPE_WORDS = {
    "circle": ("circle", "ball", "disc", "dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle",),
}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
COLOUR_WORDS = {colour: (colour,) for colour in dict.fromkeys(OBJECT_COLOURS + BACKGROUND_COLOURS)}
COLOUR_WORDS["gray"] = ("gray", "grey")
_STRAIGHT_VERBS = ("moving {}", "going {}", "drifting {}", "sliding {}", "moving to the {}")
MOTION_PHRASES = {
    **{
        m: tuple(v.format(m.split()[1]) for v in _STRAIGHT_VERBS) + (f"heading {m.split()[1]}",)
        for m in DIRECTIONS
    },
    "bouncing": ("bouncing", "bouncing around", "ricocheting"),
    "still": ("still", "not moving", "standing still", "motionless"),
}
BACKGROUND_PREPOSITIONS = ("on", "over", "against")


@dataclass(frozen=True)
class ParsedCaption:
    attributes: WorldAttributes
    unknown_words: list[str]  # words not understood, or contradicting an earlier word


def _phrase_table() -> dict[tuple[str, ...], tuple[str, str]]:
    """Every phrase the parser knows, as words -> (attribute, value)."""
    table: dict[tuple[str, ...], tuple[str, str]] = {}
    groups = {"shape": SHAPE_WORDS, "size": SIZE_WORDS, "motion": MOTION_PHRASES}
    for attribute, words in groups.items():
        for value, phrases in words.items():
            table.update({tuple(p.split()): (attribute, value) for p in phrases})
    for value, words in COLOUR_WORDS.items():
        table.update({(w,): ("colour", value) for w in words})
        if value in BACKGROUND_COLOURS:
            table.update(_background_phrases(value, words))
    return table


def _background_phrases(value: str, words: tuple[str, ...]) -> dict:
    """'on a B background', 'over B', 'B background', ... for one background colour."""
    table = {}
    for word in words:
        table[(word, "background")] = ("background", value)
        for prep in BACKGROUND_PREPOSITIONS:
            for article in ((), *((a,) for a in ARTICLES)):
                table[(prep, *article, word)] = ("background", value)
                table[(prep, *article, word, "background")] = ("background", value)
    return table


PHRASES = _phrase_table()
_LONGEST = max(len(p) for p in PHRASES)
CAPTION_VOCABULARY: list[str] = sorted({w for p in PHRASES for w in p} | set(FILLERS))


def parse_caption(text: str) -> ParsedCaption:
    """Attributes named by a free-form caption (left-out ones are None) and the words not used."""
    words = split_words(text)
    found: dict[str, str] = {}
    unknown: list[str] = []
    i = 0
    while i < len(words):
        length, meaning = _match(words, i)
        if meaning is None:
            if words[i] not in FILLERS:
                unknown.append(words[i])
        elif meaning[0] in found or not _fits(meaning, found):
            unknown.extend(words[i : i + length])
        else:
            found[meaning[0]] = meaning[1]
        i += length
    return ParsedCaption(WorldAttributes(**found), unknown)


def _match(words: list[str], i: int) -> tuple[int, tuple[str, str] | None]:
    for length in range(min(_LONGEST, len(words) - i), 0, -1):
        meaning = PHRASES.get(tuple(words[i : i + length]))
        if meaning is not None:
            return length, meaning
    return 1, None


def _fits(meaning: tuple[str, str], found: dict[str, str]) -> bool:
    """Whether a value can join the attributes found so far (a valid, distinct colour)."""
    attribute, value = meaning
    if attribute == "colour":
        return value in OBJECT_COLOURS and value != found.get("background")
    if attribute == "background":
        return value != found.get("colour")
    return True


def canonical_caption(attrs: WorldAttributes) -> str:
    """'a {size} {colour} {shape} {motion} on a {background} background', left-out parts omitted."""
    subject = " ".join(v for v in (attrs.size, attrs.colour, attrs.shape or "object") if v)
    words = ["a", subject]
    if attrs.motion:
        words.append(attrs.motion)
    if attrs.background:
        words.append(f"on a {attrs.background} background")
    return " ".join(words)


def random_caption(
    attrs: WorldAttributes,
    rng: np.random.Generator,
    paraphrase: bool = True,
    drop_prob: float = 0.0,
) -> str:
    """A caption of `attrs` for training: random synonyms, word order and left-out parts.

    With `paraphrase=False` it is the canonical caption (still leaving parts out by drop_prob).
    `parse_caption` reads back exactly the attributes that were kept.
    """
    kept = {k: (None if rng.random() < drop_prob else getattr(attrs, k)) for k in _DROPPABLE}
    attrs = replace(attrs, **kept)
    if not paraphrase:
        return canonical_caption(attrs)
    parts = _paraphrased_parts(attrs, rng)
    caption = _arrange(parts, rng)
    return caption[0].upper() + caption[1:] if rng.random() < 0.3 else caption


_DROPPABLE = ("size", "motion", "background")


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return str(options[rng.integers(len(options))])


def _paraphrased_parts(attrs: WorldAttributes, rng: np.random.Generator) -> dict[str, str]:
    """Each present attribute as a randomly chosen phrase."""
    parts = {}
    if attrs.size:
        parts["size"] = _pick(rng, SIZE_WORDS[attrs.size])
    if attrs.colour:
        parts["colour"] = _pick(rng, COLOUR_WORDS[attrs.colour])
    parts["shape"] = _pick(rng, SHAPE_WORDS[attrs.shape]) if attrs.shape else "object"
    if attrs.motion:
        parts["motion"] = _pick(rng, MOTION_PHRASES[attrs.motion])
    if attrs.background:
        word = _pick(rng, COLOUR_WORDS[attrs.background])
        prep = _pick(rng, BACKGROUND_PREPOSITIONS)
        parts["background"] = (
            f"{prep} {word}" if rng.random() < 0.25 else f"{prep} a {word} background"
        )
    return parts


def _arrange(parts: dict[str, str], rng: np.random.Generator) -> str:
    """Join the parts in one of a few readable orders, with or without the leading article."""
    adjectives = [parts[k] for k in ("size", "colour") if k in parts]
    if len(adjectives) == 2 and rng.random() < 0.25:
        adjectives.reverse()
    article = ["a"] if rng.random() < 0.7 else []
    noun = " ".join(article + adjectives + [parts["shape"]])
    tail = [parts[k] for k in ("motion", "background") if k in parts]
    if len(tail) == 2 and rng.random() < 0.3:
        tail.reverse()
    order = rng.integers(3)
    if order == 1 and "background" in parts:  # "on a black background, a red ball moving up"
        tail.remove(parts["background"])
        return ", ".join([parts["background"], " ".join([noun, *tail])])
    if order == 2 and len(tail) == 2:  # "a red ball on a black background, moving up"
        return f"{noun} {parts['background']}, {parts['motion']}"
    return " ".join([noun, *tail])
