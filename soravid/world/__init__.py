"""The shapes world (its contract: SHAPES_WORLD.md beside this file): attributes, captions,
renderer and judge."""

from soravid.world.captions import (
    CAPTION_VOCABULARY,
    ParsedCaption,
    canonical_caption,
    parse_caption,
    random_caption,
    split_words,
)
from soravid.world.judge import Verdict, WindowVerdict, judge_frames, judge_video
from soravid.world.render import render_clip, render_frames, start_position
from soravid.world.spec import WorldAttributes, sample_attributes

__all__ = [
    "CAPTION_VOCABULARY",
    "ParsedCaption",
    "Verdict",
    "WindowVerdict",
    "WorldAttributes",
    "canonical_caption",
    "judge_frames",
    "judge_video",
    "parse_caption",
    "random_caption",
    "render_clip",
    "render_frames",
    "sample_attributes",
    "split_words",
    "start_position",
]
