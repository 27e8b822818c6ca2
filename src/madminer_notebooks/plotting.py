"""Plot helpers for the notebooks: contours and Fisher ellipses in each method's style (from the methods
table), and atomic saving of figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .atomic import atomic_file
from .inference.intervals import GridValues
from .inference.levels import q_threshold
from .methods import style


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Save as PNG under a temporary name, then rename (the driver's resume sees only whole files)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def show_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save ``fig`` (:func:`save_figure`), close it and show the saved PNG.

    In a notebook, ``plt.show()`` after saving renders the figure again, twice: the inline backend also
    crops to a tight bounding box, which draws the figure once to measure it. For the analysis stage's
    22 panels that took longer than saving it (1.2 s per execution here); showing the PNG just written
    costs nothing and shows exactly the file the report links. Outside IPython it only saves."""
    path = save_figure(fig, path)
    plt.close(fig)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # no IPython: nothing to show on
        return
    if get_ipython() is not None:
        display(Image(filename=str(path)))


def as_image(theta_grid: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The x and y axes of a flat grid of points (n_points, 2) and its values as an image (n_y, n_x), as
    matplotlib's ``contour`` and ``pcolormesh`` take them: the statistics' layout
    (:meth:`~.inference.intervals.GridValues.from_points`, x first), transposed."""
    grid = GridValues.from_points(np.asarray(theta_grid), np.asarray(values))
    return grid.axes[0], grid.axes[1], grid.q.T


def contour_panel(ax: plt.Axes, theta_grid: np.ndarray, q: np.ndarray, name: str, labels: list[str]) -> None:
    """68% (solid) and 95% (dashed) CL contours of q = -2 Delta log L for one method."""
    xs, ys, image = as_image(theta_grid, q)
    look = style(name)
    ax.contour(xs, ys, image, levels=[q_threshold("68", 2)], colors=[look["color"]], linestyles="solid")
    ax.contour(xs, ys, image, levels=[q_threshold("95", 2)], colors=[look["color"]], linestyles="dashed")
    ax.plot([], [], color=look["color"], label=look["label"])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])


def fisher_ellipse(matrix: np.ndarray, points: int = 400, level: float = 1.0) -> np.ndarray:
    """Points (2, n) of the ellipse dtheta^T I dtheta = level around the SM. At 1: the expected 68% region
    (one parameter at a time) that the Fisher information ``I`` alone allows; at ``q_threshold(cl, 2)``: the expected
    2D region at that confidence level. A direction without information gives a very long ellipse."""
    w, v = np.linalg.eigh(np.asarray(matrix, dtype=float))
    t = np.linspace(0.0, 2.0 * np.pi, points)
    return v @ (np.sqrt(level) * np.stack([np.cos(t), np.sin(t)]) / np.sqrt(np.clip(w, 1e-12, None))[:, None])


def truth_bound_panel(ax: plt.Axes, truth: np.ndarray) -> None:
    """The parton-level truth's expected 68% and 95% CL regions from its Fisher information, shaded: on
    the limits figure, the best any method could do (the same levels as :func:`contour_panel`'s contours)."""
    for cl, alpha in (("95", 0.12), ("68", 0.25)):
        ax.fill(*fisher_ellipse(truth, level=q_threshold(cl, 2)), color="0.3", alpha=alpha, lw=0)
    ax.fill([], [], color="0.3", alpha=0.35, label="truth bound (parton-level Fisher)")


def information_panel(ax: plt.Axes, fractions: dict[str, dict[str, float]], labels: dict[str, str]) -> None:
    """Horizontal bars: each approach's information as a fraction of the truth's, per parameter (the other
    profiled), with the truth at 1."""
    approaches = list(fractions)
    names = list(next(iter(fractions.values()))) if fractions else []
    height = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        y = np.arange(len(approaches)) + (j - (len(names) - 1) / 2) * height
        ax.barh(y, [fractions[a][name] for a in approaches], height=height, color=f"C{j}", label=name)
    ax.axvline(1.0, color="k", lw=1, ls=":")
    ax.set_yticks(np.arange(len(approaches)), [labels.get(a, a) for a in approaches])
    ax.invert_yaxis()
    ax.set_xlabel(r"information / truth's  $= (\sigma_\mathrm{truth} / \sigma)^2$")
    ax.legend(fontsize=8, loc="lower right")


def fisher_panel(ax: plt.Axes, matrices: dict[str, np.ndarray], labels: dict[str, str],
                 covariance: dict[str, np.ndarray] | None = None, seed: int = 0) -> None:  # fmt: skip
    """Fisher ellipses of several approaches on one axis; an approach with a covariance of its information
    (the truth's Monte-Carlo error, SALLY's ensemble) gets a light band of ellipses drawn from it."""
    rng = np.random.default_rng(seed)
    for i, (name, m) in enumerate(matrices.items()):
        color = f"C{i}"
        if covariance and name in covariance:
            cov = np.asarray(covariance[name]).reshape(4, 4)
            for draw in rng.multivariate_normal(np.asarray(m).ravel(), cov, size=60, check_valid="ignore"):
                sample = draw.reshape(2, 2)
                sample = 0.5 * (sample + sample.T)
                if np.all(np.linalg.eigvalsh(sample) > 0):
                    ax.plot(*fisher_ellipse(sample), color=color, alpha=0.06, lw=2)
        ax.plot(*fisher_ellipse(m), color=color, lw=1.6, label=labels.get(name, name))
    ax.plot([0], [0], "k*", label="SM")
