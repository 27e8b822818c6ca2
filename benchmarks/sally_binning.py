"""How SALLY's estimated score is binned for its limits, measured: the 68% widths of each binning against the
width that SALLY's own Fisher information predicts, on finished run folders (made by ``benchmarks/limits.py``).

    .venv/bin/python benchmarks/sally_binning.py [NAME=RUN_FOLDER ...]

The default folders are ``runs/limits/{quick,tutorial-parton,tutorial-shower}/run``. Every binning uses the
same events, the same trained ensemble, the Asimov data of the evaluation notebook and the same interval
scan; only ``mode`` and the bins change:

- ``sally 8x8``: MadMiner's default for a 2D score, 8 bins of equal probability per component;
- ``sally 20x20``: the same, finer;
- ``sallino``: one statistic per theta, the score projected on theta's direction, in 25 bins, either of equal
  probability (MadMiner's adaptive binning) or of equal width (the chain's choice), or 50 of equal width.

The Fisher prediction is ``2 sqrt((I^-1)_ii)`` of SALLY's scale-free information (``fisher_information.json``,
key ``sally``). Writes ``benchmarks/results/sally_binning.json`` and ``.md``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_RUNS = {n: ROOT / "runs" / "limits" / n / "run" for n in ("quick", "tutorial-parton", "tutorial-shower")}

#: label -> (mode, bins, sallino binning)
BINNINGS: dict[str, tuple[str, int, str | None]] = {
    "sally 8x8 (equal probability)": ("sally", 8, None),
    "sally 20x20 (equal probability)": ("sally", 20, None),
    "sallino 25 (equal probability)": ("sallino", 25, "equal-probability"),
    "sallino 25 (equal width, the chain's)": ("sallino", 25, "equal-width"),
    "sallino 50 (equal width)": ("sallino", 50, "equal-width"),
}


def measure(run_dir: Path) -> dict:
    """68% widths of SALLY under every binning of :data:`BINNINGS`, and its Fisher prediction."""
    from madminer_notebooks import compat
    from madminer_notebooks.inference.asimov import open_bins
    from madminer_notebooks.inference.limits import ConsistentAsymptoticLimits
    from madminer_notebooks.inference.quality import fisher_errors
    from madminer_notebooks.inference.scan import resolve_limits
    from madminer_notebooks.params import load_params
    from madminer_notebooks.paths import RunPaths

    compat.apply()
    paths = RunPaths(run_dir)
    params = load_params(json.loads((paths.root / "summary.json").read_text())["params_file"])
    e = params["evaluation"]
    names = list(params["physics"]["parameters"])
    sm = np.zeros(len(names))
    fisher = json.loads(paths.fisher.read_text())
    out = {
        "run": str(run_dir),
        "parameters": names,
        "fisher_width_68": [2.0 * float(v) for v in fisher_errors(fisher["sally"])],
        "truth_width_68": [2.0 * float(v) for v in fisher_errors(fisher["truth"])],
        "histogram_fisher_width_68": [2.0 * float(v) for v in fisher_errors(fisher["histo_2d"])],
        "binnings": {},
    }
    for label, (mode, bins, binning) in BINNINGS.items():
        start = time.perf_counter()
        limits = ConsistentAsymptoticLimits(str(paths.combined), reference=sm, sallino_binning=binning or "equal-width")
        common = dict(mode=mode, theta_true=sm, grid_resolutions=None, luminosity=e["luminosity_ifb"] * 1000.0,
                      include_xsec=True, test_split=params["sampling"]["test_split"], n_asimov=None,
                      sample_only_from_closest_benchmark=False, return_histos=False,
                      model_file=str(paths.estimator("sally")))  # fmt: skip
        if mode == "sally":  # as the evaluation notebook bins histograms: fixed at the SM, outer bins open
            at_sm = dict(hist_bins=bins, thetas_eval=sm[np.newaxis, :], fix_adaptive_binning="center")
            *_, histos = limits.expected_limits(**{**common, "return_histos": True}, **at_sm)
            common["hist_bins"] = open_bins(histos[0].edges)
        else:
            common["hist_bins"] = bins

        def log_likelihood(thetas, common=common, limits=limits):
            r = limits.expected_limits(thetas_eval=np.asarray(thetas), **common)
            return np.asarray(r[3]) + np.asarray(r[4])

        scan = resolve_limits(log_likelihood, names, [tuple(e["grid"][n]) for n in names], e["resolution"], truth=sm)
        result = scan.as_dict()
        widths = [result["intervals"][n]["68"]["high"] - result["intervals"][n]["68"]["low"] for n in names]
        out["binnings"][label] = {
            "width_68": widths,
            "width_68_over_fisher": [w / f for w, f in zip(widths, out["fisher_width_68"], strict=True)],
            "best_fit": [result["best_fit"][n] for n in names],
            "seconds": round(time.perf_counter() - start, 1),
        }
        logging.getLogger(__name__).warning("%s %s: %s", run_dir, label, out["binnings"][label])
    return out


def table(results: dict) -> str:
    lines = [
        "| run | binning | 68% width (CWL2, CPWL2) | width / SALLY's Fisher prediction | seconds |",
        "| --- | --- | --- | --- | ---: |",
    ]
    for name, r in results["runs"].items():
        f = r["fisher_width_68"]
        lines.append(f"| {name} | Fisher prediction | ({f[0]:.3f}, {f[1]:.3f}) | (1.00, 1.00) | |")
        for label, b in r["binnings"].items():
            w, x = b["width_68"], b["width_68_over_fisher"]
            cells = f"({w[0]:.3f}, {w[1]:.3f}) | ({x[0]:.2f}, {x[1]:.2f}) | {b['seconds']:.0f}"
            lines.append(f"| {name} | {label} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sys.path.insert(0, str(ROOT / "src"))
    runs = dict(a.split("=", 1) for a in sys.argv[1:]) or {n: str(p) for n, p in DEFAULT_RUNS.items() if p.exists()}
    results = {"load_before": os.getloadavg()[0], "runs": {n: measure(Path(p)) for n, p in runs.items()}}
    (RESULTS / "sally_binning.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "sally_binning.md").write_text(
        "# SALLY's limits under different binnings of its score (benchmarks/sally_binning.py)\n\n"
        "68% CL widths (each parameter with the other profiled) on SM Asimov data, 300 fb^-1, against the width\n"
        "that SALLY's own scale-free Fisher information predicts. Load average at the start: "
        f"{results['load_before']:.1f}.\n\n" + table(results) + "\n"
    )
    print(table(results))


if __name__ == "__main__":
    main()
