"""Output file names: a clip is named after its prompt and seed, so a rerun finds it again."""

from __future__ import annotations

import re
from pathlib import Path


def slugify(text: str, max_length: int = 60) -> str:
    """'A big red ball!' -> 'a-big-red-ball': lower case words joined by dashes."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_length:
            break
        slug = candidate
    return slug or "video"


def default_output_path(prompt: str, seed: int) -> Path:
    """`<slug-of-prompt>-s<seed>.mp4`, relative (to the current folder or a batch's out-dir)."""
    return Path(f"{slugify(prompt)}-s{seed}.mp4")


def extended_output_path(source: Path) -> Path:
    """`<stem of the source>-extended.mp4`, relative (to the current folder)."""
    return Path(f"{Path(source).stem}-extended.mp4")
