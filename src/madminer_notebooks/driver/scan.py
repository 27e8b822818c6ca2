"""Hyperparameter scans: sampling, training, evaluation and plotting again for every combination of the
values in the parameters' ``scan`` section, on the physics (events) of the run, then one comparison.

    scan:
      training.learning_rate: [0.001, 0.0003]
      training.hidden: [[50, 50], [100, 100]]

Each combination (a *scan point*) is a run folder ``RUN/scan/point-NN/`` of the usual layout, with its own
parameter file, manifest and executed notebooks; its inputs from earlier stages are links into ``RUN``. So a
scan resumes like a run, and every trained model of every point stays on disk. An execution whose notebook,
parameters and inputs are those the run's own execution had (a point that scans only training settings
samples nothing anew; the point with the run's own settings runs nothing) is not run again: its outputs and
executed notebook are links to the run's, its record the run's (:func:`reuse_base_executions`). With tracking on, each
training and evaluation is an MLflow run tagged ``mmnb.scan_point``. The comparison (``RUN/scan/comparison.*``
and, tracked, an MLflow run with them as artifacts) lists the 95% CL intervals of every method at every point
and its 68% CL widths relative to the histogram baseline's.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import yaml

from .. import tracking
from ..atomic import atomic_file
from ..chain import executions, scan_stages
from ..params import with_overrides
from ..paths import RunPaths
from .execute import hashes
from .manifest import Manifest, Record, files_as_recorded
from .step import link_inputs

log = logging.getLogger(__name__)

SCAN_STAGES = scan_stages()


def scan_points(params: dict) -> list[tuple[str, dict]]:
    """(label, overrides) of every combination of the scanned values, in a stable order."""
    keys = list(params["scan"])
    points = []
    for values in itertools.product(*(params["scan"][k] for k in keys)):
        overrides = dict(zip(keys, values, strict=True))
        label = ", ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items())
        points.append((label, overrides))
    return points


def _point_params(params: dict, overrides: dict) -> dict:
    point = with_overrides(params, overrides)
    point["scan"] = {}
    point["description"] = f"scan point of {params.get('description') or 'a run'}: " + ", ".join(
        f"{k}={json.dumps(v)}" for k, v in overrides.items()
    )
    return point


def link_point_inputs(params: dict, paths: RunPaths, base: RunPaths) -> None:
    """Link what the scanned stages read but do not make themselves (samples, physics) from the base run."""
    todo = [ex for stage in SCAN_STAGES for ex in executions(params, stage, paths.root)]
    made = {rel for ex in todo for rel in ex.outputs}
    outside = [dataclasses.replace(ex, inputs=tuple(r for r in ex.inputs if r not in made)) for ex in todo]
    link_inputs(outside, paths, [base.root])


def reuse_base_executions(params: dict, stage: str, paths: RunPaths, base: RunPaths) -> list[str]:
    """Take over the base run's executions of ``stage`` that this point would repeat exactly: the same
    notebook, parameters and input files (by content, in the point's folder) as the run recorded, and the
    run's outputs still as recorded. Their outputs and executed notebooks become links to the run's and their
    records are copied, so the point's driver finds them up to date. An execution that must run has any link
    left at its outputs removed first: a notebook writing through a link would overwrite the run's file.
    Returns the names taken over."""
    base_records = Manifest(base.manifest).records
    manifest = Manifest(paths.manifest)
    reused = []
    for ex in executions(params, stage, paths.root):
        nb_sha, p_sha = hashes(ex, params)
        if manifest.up_to_date(ex.name, paths.root, nb_sha, p_sha, ex.inputs, ex.outputs):
            continue  # done in this point already (by itself, or taken over before)
        record = base_records.get(ex.name)
        same = (
            record is not None
            and (record["notebook"], record["params"]) == (nb_sha, p_sha)
            and sorted(record["inputs"]) == sorted(ex.inputs)
            and sorted(record["outputs"]) == sorted(ex.outputs)
            and files_as_recorded(paths.root, record["inputs"])
            and files_as_recorded(base.root, record["outputs"])
        )
        notebook = paths.notebooks / f"{ex.name}.ipynb"
        if not same:
            for target in [*(paths.root / rel for rel in ex.outputs), notebook]:
                if target.is_symlink():
                    target.unlink()
            continue
        sources = {rel: base.root / rel for rel in ex.outputs}
        sources[str(notebook.relative_to(paths.root))] = base.notebooks / f"{ex.name}.ipynb"
        for rel, source in sources.items():
            target = paths.root / rel
            if source.is_file() and not (target.is_symlink() and target.resolve() == source.resolve()):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                target.symlink_to(source.resolve())
        manifest.record(ex.name, Record(**record))
        reused.append(ex.name)
    if reused:
        log.info("taken over from the run (the same notebook, parameters and inputs): %s", ", ".join(reused))
    return reused


RunStage = Callable[[str, dict, Path, RunPaths], float]


def run_scan(params: dict, base: RunPaths, run_stage: RunStage) -> Path:
    """Every scan point through :data:`SCAN_STAGES` (``run_stage(stage, params, params_file, paths)``), then
    the comparison; returns the comparison's JSON file."""
    folder = base.root / "scan"
    points = scan_points(params)
    rows = []
    cfg = tracking.config(params, base)
    if cfg is not None:  # the points log into the run's store (its experiments exist), not one store each
        os.environ["MLFLOW_TRACKING_URI"] = cfg.uri
    for i, (label, overrides) in enumerate(points):
        paths = RunPaths(folder / f"point-{i:02d}")
        paths.make_folders()
        point = _point_params(params, overrides)
        params_file = paths.root / "params.yaml"
        text = yaml.safe_dump(point, sort_keys=False)
        if not params_file.is_file() or params_file.read_text() != text:
            with atomic_file(params_file) as tmp:
                tmp.write_text(text)
        link_point_inputs(point, paths, base)
        log.info("scan point %d/%d: %s", i + 1, len(points), label)
        os.environ[tracking.SCAN_VARIABLE] = label  # a tag on the point's MLflow runs, via the kernels' env
        try:
            for stage in SCAN_STAGES:
                reuse_base_executions(point, stage, paths, base)
                run_stage(stage, point, params_file, paths)
        finally:
            os.environ.pop(tracking.SCAN_VARIABLE, None)
        intervals = json.loads(paths.intervals.read_text())
        rows.append({"point": paths.root.name, "label": label, "overrides": overrides, "results": intervals})
    return write_comparison(params, base, rows)


def write_comparison(params: dict, base: RunPaths, rows: list[dict]) -> Path:
    """``RUN/scan/comparison.{json,md,png}``; with tracking on, also an MLflow run holding them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..methods import style
    from ..plotting import save_figure

    folder = base.root / "scan"
    names = list(params["physics"]["parameters"])
    out = folder / "comparison.json"
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))

    lines = ["| point | settings | method | " + " | ".join(f"{n} 95% CL" for n in names)
             + f" | 68% width / histogram ({', '.join(names)}) |",
             "| --- | --- | --- | " + " | ".join("---" for _ in names) + " | --- |"]  # fmt: skip
    for row in rows:
        for method, s in row["results"].items():
            cells = []
            for n in names:
                iv = s["intervals"][n]["95"]
                cells.append(f"[{iv['low']:+.3f}, {iv['high']:+.3f}]")
            relative = s.get("quality", {}).get("width_68_relative_to_histo", {})
            cells.append(", ".join(f"{relative[n]:.2f}" for n in names) if relative else "–")
            lines.append(f"| {row['point']} | {row['label']} | {method} | " + " | ".join(cells) + " |")
    table = folder / "comparison.md"
    with atomic_file(table) as tmp:
        tmp.write_text("\n".join(lines) + "\n")

    methods = list(rows[0]["results"]) if rows else []
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    x = range(len(rows))
    for ax, n in zip(axes[0], names, strict=True):
        for m in methods:
            widths = [r["results"][m]["intervals"][n]["95"]["high"] - r["results"][m]["intervals"][n]["95"]["low"]
                      for r in rows]  # fmt: skip
            look = style(m)
            ax.plot(list(x), widths, marker="o", label=look["label"], color=look["color"])
        ax.set_xticks(list(x), [r["point"] for r in rows], rotation=30)
        ax.set_ylabel(f"width of the 95% CL interval of {n}")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("scan: " + "; ".join(f"{r['point']}: {r['label']}" for r in rows), fontsize=7)
    fig.tight_layout()
    plot = folder / "comparison.png"
    save_figure(fig, plot)
    plt.close(fig)

    with tracking.tracked_run(params, base, "evaluation", "scan comparison", tags={"mmnb.scan": "comparison"}) as t:
        t.log_params({"scan." + k: json.dumps(v) for k, v in params["scan"].items()})
        for path in (out, table, plot):
            t.log_artifact(path, "scan")
    log.info("scan comparison: %s", table)
    return out
