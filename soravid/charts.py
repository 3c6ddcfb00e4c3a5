"""PNG line charts (loss curves, accuracy over time), drawn with matplotlib off-screen.

matplotlib is imported inside the function: it is slow to import and only these reports need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def line_chart(
    path: Path,
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
) -> Path:
    """One line per named (xs, ys) series, written to `path` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    for name, (xs, ys) in series.items():
        axes.plot(xs, ys, label=name, linewidth=1.2)
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if log_y:
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)
