"""Smoke tests of soravid as a user runs it: a subprocess, not CliRunner."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = ("generate", "presets", "info")


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=cwd)


def test_python_m_soravid_help_lists_the_commands(tmp_path):
    result = run(sys.executable, "-m", "soravid", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert all(command in result.stdout for command in COMMANDS)


def test_the_console_script_lists_the_presets(tmp_path):
    script = shutil.which("soravid", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("soravid is not installed in this environment (pip install .)")
    result = run(script, "presets", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5


def test_the_cli_does_not_import_heavy_modules():
    # `soravid --help` must answer in well under a second: torch and friends load lazily.
    check = (
        "import sys, soravid.cli; print(sorted({'torch', 'numpy', 'omegaconf'} & set(sys.modules)))"
    )
    result = run(sys.executable, "-c", check)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
