"""How long `soravid --help` and `python -m soravid --help` take to answer (goal: < 1 s).

    python benchmarks/cli_startup.py [--runs 5]

Prints the best, median and worst wall time of each over fresh processes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def time_command(command: list[str], runs: int) -> list[float]:
    """Wall times of `runs` fresh processes; raises if the command fails."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def commands() -> dict[str, list[str]]:
    found = {"python -m soravid --help": [sys.executable, "-m", "soravid", "--help"]}
    script = shutil.which("soravid", path=str(Path(sys.executable).parent))
    if script is not None:
        found["soravid --help"] = [script, "--help"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"{'command':<28} {'best':>7} {'median':>7} {'worst':>7}")
    for name, command in commands().items():
        times = time_command(command, runs)
        best, median, worst = min(times), statistics.median(times), max(times)
        print(f"{name:<28} {best:>6.3f}s {median:>6.3f}s {worst:>6.3f}s")


if __name__ == "__main__":
    main()
