"""Preset schema: what a preset YAML may say, and the resolved values generation runs on.

A preset file is merged onto `OmegaConf.structured(Preset)`, so an unknown key or a wrong type
is an error naming the file and the key. Resolution turns aspect + short side into pixels,
applies command-line overrides and checks every value against the limits below; an error names
the file and key, or the flag, that gave the bad value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from soravid.errors import BadInputError

MAX_SECONDS = 600.0
# Every canvas side is a multiple of this: the embedded model's autoencoder spatial factor (4)
# times its DiT patch (4). A model file may need less (Pipeline.check_canvas), never more.
SIZE_MULTIPLE = 16
MIN_SIDE, MAX_SIDE = 32, 1024
MAX_FPS = 60
MAX_STEPS = 1000
MAX_DRAWS = 16

# What the command line may override, and where each value lives in a preset file.
OVERRIDE_KEYS = {
    "seconds": "seconds",
    "fps": "fps",
    "width": "width",
    "height": "height",
    "aspect": "aspect",
    "model": "model",
    "steps": "sampler.steps",
    "guidance": "sampler.guidance",
    "continue_from": "sampler.continue_from",
}
# Keys only a preset file sets, and where they live in it.
FILE_KEYS = {
    "guidance_until": "sampler.guidance_until",
    "single_subject": "sampler.single_subject",
    "walls": "sampler.walls",
    "draws": "sampler.draws",
}


@dataclass
class SamplerConfig:
    steps: int = 8  # Euler steps from noise (t=1) to data (t=0)
    guidance: float = 3.0  # classifier-free guidance scale; 1.0 turns guidance off
    # Guidance only while the flow time is above this (1 = noise, 0 = data): the layout is set
    # at high noise, and the steps below it then cost one model pass instead of two.
    guidance_until: float = 0.0
    # Frames that continue a clip start at this flow time from a clean frame (the clip's opening,
    # or the last frame of a clip being continued) moved to where the subject is and on as it
    # last moved (motion.extrapolate), not from noise at 1: the subject is kept, and the steps
    # above it are saved. The first chunk continuing a clip with no motion to go on yet (a new
    # clip's chunk after its opening) is made from noise and then again so, from the motion it
    # made, which keeps the subject from jumping away from the opening. 1: from noise.
    continue_from: float = 1.0
    # For a model of one subject on a flat background (the shapes world): every latent frame
    # of a new clip is cleared of all but its subject (motion.subject_only) before it is shown
    # and carried on. A stray mark in the opening would be carried for the whole clip, and a
    # small DiT's first moving frames sometimes grow fragments, or a copy of the subject
    # across the torus's edge before the subject gets there.
    single_subject: bool = False
    # For the shapes world, whose only diagonal motion is bouncing: in the guess continue_from
    # starts from, a subject the clip's first frames move on a diagonal goes on at their speed
    # (motion.motion_speed), turning at the canvas's edges (motion.bounce_path) instead of
    # wrapping round them; from t = 0.5 the model keeps the motion it is given.
    walls: bool = False
    # The first chunk that continues a clip from noise (after a new clip's opening, the one
    # chunk with no motion to carry on) is made this many times, from other noise, and the
    # draw whose frames are most nearly shifts of each other kept (motion.rigidity): a small
    # DiT's first moving frames sometimes break the subject or jump.
    draws: int = 1


@dataclass
class Preset:
    """The schema of a preset YAML file. Either width+height or aspect+short_side sets the size."""

    description: str = ""
    seconds: float = 5.0
    fps: int = 8
    width: int | None = None
    height: int | None = None
    aspect: str | None = None  # "W:H", e.g. "16:9"
    short_side: int | None = None
    model: str = "embedded"  # "embedded" or a path to a .safetensors file
    sampler: SamplerConfig = field(default_factory=SamplerConfig)


@dataclass(frozen=True)
class ResolvedPreset:
    """Concrete, validated values for one generation."""

    name: str
    seconds: float
    fps: int
    width: int
    height: int
    model: str
    steps: int
    guidance: float
    guidance_until: float = 0.0
    continue_from: float = 1.0
    single_subject: bool = False
    walls: bool = False
    draws: int = 1

    @property
    def frames(self) -> int:
        return max(1, round(self.seconds * self.fps))


# ---------------------------------------------------------------------------- finding presets


def presets_dir() -> Path:
    """A wheel carries the presets inside the package; a source checkout keeps them at the top."""
    packaged = Path(__file__).parent / "presets"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "presets"


def list_presets() -> list[str]:
    return sorted(path.stem for path in presets_dir().glob("*.yaml"))


def preset_path(name_or_path: str) -> Path:
    """The file behind a preset name, or the given path when it names a YAML file."""
    if "/" in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        if not path.is_file():
            raise BadInputError(f"preset file not found: {path}")
        return path
    path = presets_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        valid = ", ".join(list_presets())
        raise BadInputError(f"unknown preset '{name_or_path}'; valid presets: {valid}")
    return path


# ---------------------------------------------------------------------------- loading one file


def load_preset(name_or_path: str) -> Preset:
    """Read and validate one preset file against the schema (sizes are checked on resolve)."""
    return _load_preset_file(preset_path(name_or_path))


def _load_preset_file(path: Path) -> Preset:
    data = _read_yaml_mapping(path)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Preset), data)
    except ConfigKeyError as error:
        raise BadInputError(f"{path}: unknown key '{error.full_key}'") from None
    except OmegaConfBaseException as error:
        key = f" '{error.full_key}'" if error.full_key else ""
        reason = str(error.msg).splitlines()[0]
        raise BadInputError(f"{path}: bad value for key{key}: {reason}") from None
    return OmegaConf.to_object(merged)


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: cannot read preset file ({error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise BadInputError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: a preset must be a mapping of keys to values")
    return data


# ---------------------------------------------------------------------------- resolving


@dataclass(frozen=True)
class _Origin:
    """Names where a value came from, so an error points at the file key or the flag."""

    file: Path
    flags: frozenset[str]

    def of(self, key: str) -> str:
        if key in self.flags:
            return f"--{key.replace('_', '-')}"
        return f"{self.file}: {(OVERRIDE_KEYS | FILE_KEYS).get(key, key)}"


def resolve_preset(name_or_path: str = "default", **overrides: Any) -> ResolvedPreset:
    """Load a preset, apply the overrides that are not None, and validate the result."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if unknown := sorted(set(given) - set(OVERRIDE_KEYS)):
        raise TypeError(f"resolve_preset got unknown overrides: {unknown}")
    path = preset_path(name_or_path)
    preset = _load_preset_file(path)
    origin = _Origin(path, frozenset(given))
    width, height = _canvas(preset, given, origin)
    resolved = ResolvedPreset(
        name=name_or_path,
        seconds=float(given.get("seconds", preset.seconds)),
        fps=given.get("fps", preset.fps),
        width=width,
        height=height,
        model=given.get("model", preset.model),
        steps=given.get("steps", preset.sampler.steps),
        guidance=float(given.get("guidance", preset.sampler.guidance)),
        guidance_until=float(preset.sampler.guidance_until),
        continue_from=float(given.get("continue_from", preset.sampler.continue_from)),
        single_subject=bool(preset.sampler.single_subject),
        walls=bool(preset.sampler.walls),
        draws=int(preset.sampler.draws),
    )
    _validate(resolved, origin)
    return resolved


def _canvas(preset: Preset, given: dict[str, Any], origin: _Origin) -> tuple[int, int]:
    """(width, height) from the flags where given, else from the preset."""
    if "aspect" in given:
        if "width" in given or "height" in given:
            raise BadInputError("--aspect cannot be combined with --width or --height")
        short_side = min(_preset_canvas(preset, origin))
        return _size_from_aspect(given["aspect"], short_side, origin.of("aspect"))
    if "width" in given and "height" in given:
        sizes = given["width"], given["height"]
    else:
        preset_width, preset_height = _preset_canvas(preset, origin)
        sizes = given.get("width", preset_width), given.get("height", preset_height)
    for key, side in zip(("width", "height"), sizes, strict=True):
        _check_side(side, origin.of(key))
    return sizes


def _preset_canvas(preset: Preset, origin: _Origin) -> tuple[int, int]:
    by_pixels = preset.width is not None or preset.height is not None
    by_aspect = preset.aspect is not None or preset.short_side is not None
    if by_pixels and by_aspect:
        raise BadInputError(f"{origin.file}: give width+height or aspect+short_side, not both")
    if by_aspect:
        if preset.aspect is None or preset.short_side is None:
            missing = "aspect" if preset.aspect is None else "short_side"
            raise BadInputError(f"{origin.file}: missing key '{missing}' (aspect needs short_side)")
        _check_side(preset.short_side, origin.of("short_side"))
        return _size_from_aspect(preset.aspect, preset.short_side, origin.of("aspect"))
    if preset.width is None or preset.height is None:
        missing = "width" if preset.width is None else "height"
        raise BadInputError(f"{origin.file}: missing key '{missing}' (or give aspect+short_side)")
    return preset.width, preset.height


def _size_from_aspect(aspect: str, short_side: int, where: str) -> tuple[int, int]:
    """'16:9' with short side 64 -> (112, 64): the long side rounds to SIZE_MULTIPLE."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*", aspect)
    ratio_w, ratio_h = (float(match[1]), float(match[2])) if match else (0.0, 0.0)
    if ratio_w <= 0 or ratio_h <= 0:
        raise BadInputError(f"{where} must look like W:H with positive numbers, got '{aspect}'")
    ratio = max(ratio_w, ratio_h) / min(ratio_w, ratio_h)
    long_side = SIZE_MULTIPLE * round(short_side * ratio / SIZE_MULTIPLE)
    if long_side > MAX_SIDE:
        raise BadInputError(
            f"{where} '{aspect}' needs a long side of {long_side} px, above {MAX_SIDE}"
        )
    return (long_side, short_side) if ratio_w >= ratio_h else (short_side, long_side)


def _check_side(side: int, where: str) -> None:
    if side % SIZE_MULTIPLE or not MIN_SIDE <= side <= MAX_SIDE:
        raise BadInputError(
            f"{where} must be a multiple of {SIZE_MULTIPLE} from {MIN_SIDE} to {MAX_SIDE}, "
            f"got {side}"
        )


def _validate(resolved: ResolvedPreset, origin: _Origin) -> None:
    seconds, guidance = resolved.seconds, resolved.guidance
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        _reject(origin.of("seconds"), f"must be above 0 and at most {MAX_SECONDS:g}", seconds)
    if not 1 <= resolved.fps <= MAX_FPS:
        _reject(origin.of("fps"), f"must be from 1 to {MAX_FPS}", resolved.fps)
    if not 1 <= resolved.steps <= MAX_STEPS:
        _reject(origin.of("steps"), f"must be from 1 to {MAX_STEPS}", resolved.steps)
    if not (math.isfinite(guidance) and guidance >= 0):
        _reject(origin.of("guidance"), "must be a finite number >= 0", guidance)
    if not 0 <= resolved.guidance_until <= 1:
        _reject(origin.of("guidance_until"), "must be from 0 to 1", resolved.guidance_until)
    if not 0 < resolved.continue_from <= 1:
        _reject(origin.of("continue_from"), "must be above 0 and at most 1", resolved.continue_from)
    if not 1 <= resolved.draws <= MAX_DRAWS:
        _reject(origin.of("draws"), f"must be from 1 to {MAX_DRAWS}", resolved.draws)
    if not resolved.model.strip():
        _reject(origin.of("model"), "must name a model ('embedded' or a .safetensors path)", "")


def _reject(where: str, rule: str, value: object) -> None:
    raise BadInputError(f"{where} {rule}, got {value}")


def preset_yaml(resolved: ResolvedPreset, description: str = "") -> str:
    """A preset file holding the resolved values (size in pixels); loading it gives them back."""
    document = {
        "description": description,
        "seconds": resolved.seconds,
        "fps": resolved.fps,
        "width": resolved.width,
        "height": resolved.height,
        "model": resolved.model,
        "sampler": {
            "steps": resolved.steps,
            "guidance": resolved.guidance,
            "guidance_until": resolved.guidance_until,
            "continue_from": resolved.continue_from,
            "single_subject": resolved.single_subject,
            "walls": resolved.walls,
            "draws": resolved.draws,
        },
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
