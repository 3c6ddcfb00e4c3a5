"""Presets: the shipped ones, overrides, and every way a preset or flag can be wrong."""

from dataclasses import replace
from pathlib import Path

import pytest

from soravid.config import (
    MAX_SECONDS,
    list_presets,
    load_preset,
    preset_yaml,
    presets_dir,
    resolve_preset,
)
from soravid.errors import BadInputError

SHIPPED = {
    "default": (96, 64, 5.0),
    "square": (64, 64, 5.0),
    "portrait": (64, 112, 5.0),
    "widescreen": (112, 64, 5.0),
    "minute": (96, 64, 60.0),
}


def write_preset(folder: Path, text: str, name: str = "mine.yaml") -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def bad_input(name: str, **overrides: object) -> str:
    """The one-line message of the BadInputError that resolving raises."""
    with pytest.raises(BadInputError) as caught:
        resolve_preset(name, **overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_shipped_presets_are_found_and_listed():
    assert (presets_dir() / "default.yaml").is_file()
    assert list_presets() == sorted(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_presets_resolve_to_their_canvas(name):
    resolved = resolve_preset(name)
    width, height, seconds = SHIPPED[name]
    assert (resolved.width, resolved.height, resolved.seconds) == (width, height, seconds)
    sampler = (resolved.steps, resolved.guidance, resolved.continue_from)
    assert resolved.fps == 8 and sampler == (8, 2.0, 0.5)  # tuned for the embedded model
    assert resolved.single_subject  # the embedded model draws one subject
    assert resolved.walls  # whose only diagonal motion bounces
    assert resolved.draws == 3
    assert resolved.model == "embedded"
    assert resolved.frames == round(seconds * 8)


def test_flags_override_the_preset():
    resolved = resolve_preset(
        "default", seconds=2.5, fps=12, width=128, steps=3, guidance=1.0, model="m.safetensors"
    )
    assert (resolved.seconds, resolved.fps, resolved.width, resolved.height) == (2.5, 12, 128, 64)
    assert (resolved.steps, resolved.guidance, resolved.model) == (3, 1.0, "m.safetensors")
    assert resolved.frames == 30


def test_none_overrides_leave_the_preset_alone():
    assert resolve_preset("square", seconds=None, width=None) == resolve_preset("square")


@pytest.mark.parametrize(
    ("preset", "aspect", "size"),
    [
        ("default", "16:9", (112, 64)),
        ("default", "9:16", (64, 112)),
        ("default", "1:1", (64, 64)),
        ("default", "2.39:1", (160, 64)),
        ("portrait", "16:9", (112, 64)),  # keeps the preset's short side
    ],
)
def test_aspect_keeps_the_short_side(preset, aspect, size):
    resolved = resolve_preset(preset, aspect=aspect)
    assert (resolved.width, resolved.height) == size


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"seconds": 0.0}, "--seconds must be above 0"),
        ({"seconds": -1.0}, "--seconds must be above 0"),
        ({"seconds": float("nan")}, "--seconds must be above 0"),
        ({"seconds": float("inf")}, "--seconds must be above 0"),
        ({"seconds": MAX_SECONDS + 1}, f"at most {MAX_SECONDS:g}"),
        ({"fps": 0}, "--fps must be from 1 to 60"),
        ({"fps": 61}, "--fps must be from 1 to 60"),
        ({"width": 100}, "--width must be a multiple of 16"),
        ({"height": 24}, "--height must be a multiple of 16 from 32"),
        ({"width": 2048}, "to 1024, got 2048"),
        ({"aspect": "wide"}, "--aspect must look like W:H"),
        ({"aspect": "16x9"}, "--aspect must look like W:H"),
        ({"aspect": "0:1"}, "--aspect must look like W:H"),
        ({"aspect": "100:1"}, "--aspect '100:1' needs a long side of 6400 px"),
        ({"aspect": "16:9", "width": 64}, "--aspect cannot be combined"),
        ({"steps": 0}, "--steps must be from 1"),
        ({"guidance": float("nan")}, "--guidance must be a finite number"),
        ({"guidance": -1.0}, "--guidance must be a finite number"),
        ({"model": " "}, "--model must name a model"),
    ],
)
def test_bad_flags_name_the_flag(overrides, expected):
    assert expected in bad_input("default", **overrides)


def test_an_unknown_preset_lists_the_valid_names():
    message = bad_input("cinema")
    assert "unknown preset 'cinema'" in message
    assert "default, minute, portrait, square, widescreen" in message


def test_a_missing_preset_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert bad_input(str(missing)) == f"preset file not found: {missing}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("secs: 3\nwidth: 64\nheight: 64\n", "unknown key 'secs'"),
        ("sampler:\n  stepz: 3\n", "unknown key 'sampler.stepz'"),
        ("fps: 8.5\n", "bad value for key 'fps'"),
        ("fps: eight\n", "bad value for key 'fps'"),
        ("width: abc\n", "bad value for key 'width'"),
        ("sampler:\n  guidance: lots\n", "bad value for key 'sampler.guidance'"),
        ("fps: [1, 2\n", "malformed YAML at line"),
        ("- 1\n- 2\n", "a preset must be a mapping"),
        ("seconds: .nan\nwidth: 64\nheight: 64\n", "seconds must be above 0"),
        ("seconds: 601\nwidth: 64\nheight: 64\n", "seconds must be above 0 and at most 600"),
        ("fps: 0\nwidth: 64\nheight: 64\n", "fps must be from 1 to 60"),
        ("width: 60\nheight: 64\n", "width must be a multiple of 16"),
        ("width: 64\n", "missing key 'height'"),
        ("width: 64\nheight: 64\naspect: '1:1'\n", "not both"),
        ("aspect: '16:9'\n", "missing key 'short_side'"),
        ("aspect: '16:9'\nshort_side: 20\n", "short_side must be a multiple of 16"),
        ("aspect: sixteen\nshort_side: 64\n", "aspect must look like W:H"),
        ("sampler:\n  steps: 0\nwidth: 64\nheight: 64\n", "sampler.steps must be from 1"),
        (
            "sampler:\n  guidance_until: 1.5\nwidth: 64\nheight: 64\n",
            "sampler.guidance_until must be from 0 to 1",
        ),
        (
            "sampler:\n  continue_from: 0\nwidth: 64\nheight: 64\n",
            "sampler.continue_from must be above 0 and at most 1",
        ),
        (
            "sampler:\n  single_subject: maybe\nwidth: 64\nheight: 64\n",
            "'sampler.single_subject': Value 'maybe' is not a valid bool",
        ),
        (
            "sampler:\n  draws: 0\nwidth: 64\nheight: 64\n",
            "sampler.draws must be from 1 to 16",
        ),
    ],
)
def test_bad_preset_files_name_the_file_and_key(tmp_path, text, expected):
    path = write_preset(tmp_path, text)
    message = bad_input(path)
    assert message.startswith(path)
    assert expected in message


def test_a_flag_can_fix_what_a_preset_file_lacks(tmp_path):
    path = write_preset(tmp_path, "seconds: 2\n")
    resolved = resolve_preset(path, width=64, height=32)
    assert (resolved.width, resolved.height, resolved.seconds) == (64, 32, 2.0)


def test_an_empty_preset_file_needs_a_size(tmp_path):
    assert "missing key 'width'" in bad_input(write_preset(tmp_path, ""))


def test_load_preset_reads_the_schema():
    preset = load_preset("portrait")
    assert (preset.aspect, preset.short_side, preset.width) == ("9:16", 64, None)
    assert preset.sampler.steps == 8


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_preset_yaml_round_trips(tmp_path, name):
    resolved = resolve_preset(name)
    path = write_preset(tmp_path, preset_yaml(resolved, "copy"))
    again = resolve_preset(path)
    assert again == replace(resolved, name=path)
    assert load_preset(path).description == "copy"
