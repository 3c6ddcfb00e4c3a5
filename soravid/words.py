"""The one rule for splitting text into words, shared by the caption parser and the tokenizer."""

from __future__ import annotations

import re

WORD = re.compile(r"[a-z0-9]+")


def split_words(text: str) -> list[str]:
    """Lower-case words: runs of letters and digits; everything else separates words."""
    return WORD.findall(text.lower())
