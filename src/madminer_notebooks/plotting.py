"""Plot helpers for the notebooks: consistent styles per method and atomic saving of figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .atomic import atomic_file

STYLE = {
    "rate": {"color": "0.55", "label": "rate only"},
    "histo": {"color": "tab:green", "label": "histogram"},
    "sally": {"color": "tab:blue", "label": "SALLY"},
    "alice": {"color": "tab:red", "label": "ALICE"},
    "alices": {"color": "tab:purple", "label": "ALICES"},
}

#: -2 Delta log L for 68% and 95% CL with two parameters.
Q_2D = {"68": 2.2788, "95": 5.9915}


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Save as PNG under a temporary name, then rename (the driver's resume sees only whole files)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def grid_shape(theta_grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique axis values of a MadMiner theta grid (n_points, 2), in the order MadMiner builds it."""
    return np.unique(theta_grid[:, 0]), np.unique(theta_grid[:, 1])


def as_image(theta_grid: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reshape values on the grid to (n_y, n_x) for contour plots."""
    xs, ys = grid_shape(theta_grid)
    image = np.full((len(ys), len(xs)), np.nan)
    ix = np.searchsorted(xs, theta_grid[:, 0])
    iy = np.searchsorted(ys, theta_grid[:, 1])
    image[iy, ix] = values
    return xs, ys, image


def contour_panel(ax: plt.Axes, theta_grid: np.ndarray, q: np.ndarray, name: str, labels: list[str]) -> None:
    """68% (solid) and 95% (dashed) CL contours of q = -2 Delta log L for one method."""
    xs, ys, image = as_image(theta_grid, q)
    style = STYLE.get(name, {"color": "k", "label": name})
    ax.contour(xs, ys, image, levels=[Q_2D["68"]], colors=[style["color"]], linestyles="solid")
    ax.contour(xs, ys, image, levels=[Q_2D["95"]], colors=[style["color"]], linestyles="dashed")
    ax.plot([], [], color=style["color"], label=style["label"])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
