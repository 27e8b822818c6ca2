"""The evaluation stage's network work, three ways side by side in one process on a run folder's estimators:
MadMiner 0.9.6's own evaluation, whole arrays with torch's tanh, one network call per parameter point with
the faster tanh, and this project's blocks.

    .venv/bin/python benchmarks/evaluation_speed.py --run-dir runs/quick [--points 6] [--threads 1]

The work is the evaluation notebook's likelihood: ``ConsistentAsymptoticLimits.expected_limits`` of the SM
Asimov data (all held-out events, the ratio calibrated on one half and evaluated on the other) at the points
of a limit scan, for SALLY (``sallino``), ALICE and ALICES (``ml``). The three paths:

- ``madminer``: MadMiner's ``evaluate_ratio_model`` / ``evaluate_local_score_model`` (inputs built row by
  row) and one network call per point, and SALLY's histograms by MadMiner's ``Histo``: so slow that it runs
  on ``--points`` points only, and is reported per point;
- ``torch tanh``: compat fix 4 as it was before the blocks (whole arrays, ``torch.tanh``, one call per point);
- ``per point``: compat fix 4 alone (whole arrays, the faster tanh), one network call per point as MadMiner does;
- ``blocks``: fixes 4 and 7 (:mod:`madminer_notebooks.network_eval`) and SALLY's histograms filled
  columnar (``ColumnarRatio``), what the chain runs.

The last three also run the notebook's whole resolved scan (coarse grid and refinements), whose
intervals must agree to 1e-5 of their width. The paths alternate (``--repeats`` rounds) so that they see
the same machine load; the best time of each is kept. Writes ``benchmarks/results/evaluation_speed.{json,md}``.
"""

from __future__ import annotations

import contextlib
import json
import resource
import time
from collections.abc import Callable, Iterator

import numpy as np
from speed_common import command_line, prepare, write

from madminer_notebooks.inference.limits import ConsistentAsymptoticLimits
from madminer_notebooks.inference.sallino import ColumnarRatio, HistoRatio
from madminer_notebooks.inference.scan import resolve_limits
from madminer_notebooks.methods import METHODS
from madminer_notebooks.paths import RunPaths

PATHS = ("madminer", "torch tanh", "per point", "blocks")


@contextlib.contextmanager
def evaluation_path(name: str) -> Iterator[None]:
    """MadMiner's evaluation functions as the path ``name`` has them (compat applied: ``blocks``), with no
    score remembered from an earlier path."""
    import madminer.ml.parameterized_ratio as ratio_module
    import madminer.ml.score as score_module

    from madminer_notebooks import compat, network_eval

    cls = ratio_module.ParameterizedRatioEstimator
    saved = (ratio_module.evaluate_ratio_model, score_module.evaluate_local_score_model,
             cls.evaluate_log_likelihood_ratio, network_eval.activation_of)  # fmt: skip
    if name == "torch tanh":
        network_eval.activation_of = lambda model: model.activation
    if name != "blocks":
        cls.evaluate_log_likelihood_ratio = saved[2].__wrapped__
    if name == "madminer":
        ratio_module.evaluate_ratio_model = saved[0].__wrapped__
        score_module.evaluate_local_score_model = saved[1].__wrapped__
        ConsistentAsymptoticLimits.sallino_ratio = HistoRatio
    compat.SCORE_MEMO.clear()
    try:
        yield
    finally:
        ratio_module.evaluate_ratio_model, score_module.evaluate_local_score_model = saved[:2]
        cls.evaluate_log_likelihood_ratio, network_eval.activation_of = saved[2:]
        ConsistentAsymptoticLimits.sallino_ratio = ColumnarRatio


def likelihood(method: str, params: dict, paths: RunPaths) -> Callable[[np.ndarray], np.ndarray]:
    """The evaluation notebook's expected log L (kinematics and rate) for ``method`` at a list of points."""
    e = params["evaluation"]
    spec = METHODS[method]
    n = len(params["physics"]["parameters"])
    limits = ConsistentAsymptoticLimits(
        str(paths.combined), calibrate_ratio=e["calibrate_ratio"] and spec.limit_mode == "ml", reference=np.zeros(n)
    )
    settings = dict(mode=spec.limit_mode, theta_true=np.zeros(n), grid_resolutions=None, include_xsec=True,
                    luminosity=e["luminosity_ifb"] * 1000.0, test_split=params["sampling"]["test_split"],
                    n_asimov=None, sample_only_from_closest_benchmark=False, return_histos=False,
                    model_file=str(paths.estimator(method)))  # fmt: skip

    def log_l(thetas: np.ndarray) -> np.ndarray:
        out = limits.expected_limits(thetas_eval=np.asarray(thetas, dtype=float), **settings)
        return np.asarray(out[3]) + np.asarray(out[4])

    return log_l


def timed(fn: Callable, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = command_line(__doc__, "training")
    parser.add_argument("--points", type=int, default=6, help="points of MadMiner's own path (it is slow)")
    args = parser.parse_args()
    setup = prepare(args)
    params, paths = setup.params, setup.paths
    e = params["evaluation"]
    names = list(params["physics"]["parameters"])
    ranges = [tuple(e["grid"][n]) for n in names]
    rng = np.random.default_rng(1)
    probe = np.column_stack([rng.uniform(lo, hi, args.points) for lo, hi in ranges])  # MadMiner's few points
    rows = []
    for method in args.methods.split(","):
        log_l = likelihood(method, params, paths)
        per_point: dict[str, list[float]] = {p: [] for p in PATHS}
        scans: dict[str, list[float]] = {p: [] for p in PATHS[1:]}
        values, intervals, counted = {}, {}, {}
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(args.repeats):
            for path in PATHS:
                with evaluation_path(path):
                    seconds, values[path] = timed(log_l, probe)
                    per_point[path].append(seconds / len(probe))
                    if path == "madminer":
                        continue
                    calls: list[int] = []

                    def counting(thetas, calls=calls, log_l=log_l):
                        calls.append(len(thetas))
                        return log_l(thetas)

                    seconds, scan = timed(resolve_limits, counting, names, ranges, e["resolution"])
                    scans[path].append(seconds)
                    intervals[path], counted[path] = scan.summary["intervals"], sum(calls)
        best = {p: min(v) for p, v in per_point.items()}
        best_scan = {p: min(v) for p, v in scans.items()}
        moves = [abs(intervals["blocks"][n][cl][end] - intervals["per point"][n][cl][end])
                 / (intervals["per point"][n][cl]["high"] - intervals["per point"][n][cl]["low"])
                 for n in names for cl in ("68", "95") for end in ("low", "high")]  # fmt: skip
        row = {
            "method": method,
            "scan_points": counted["blocks"],
            "s_per_point": {p: round(v, 5) for p, v in best.items()},
            "scan_s": {p: round(v, 2) for p, v in best_scan.items()},
            "madminer_scan_s_estimated": round(best["madminer"] * counted["blocks"], 1),
            "speedup_vs_madminer": round(best["madminer"] / best["blocks"], 1),
            "speedup_vs_torch_tanh": round(best_scan["torch tanh"] / best_scan["blocks"], 2),
            "speedup_vs_per_point": round(best_scan["per point"] / best_scan["blocks"], 2),
            "max_abs_log_l_difference": float(np.max(np.abs(values["blocks"] - values["madminer"]))),
            "max_interval_move_relative": float(max(moves)),
            "peak_rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "benchmark": "evaluation_speed",
        "run_dir": str(args.run_dir),
        "points_madminer": args.points,
        "repeats": args.repeats,
        "threads": args.threads,
        "load_average_at_start": setup.load_average_at_start,
        "rows": rows,
    }
    lines = [
        "# Evaluation speed: MadMiner's network evaluation, one call per point, blocks "
        "(benchmarks/evaluation_speed.py)",
        "",
        f"The evaluation notebook's expected log L on the estimators of `{args.run_dir.name}`, one process, "
        f"{args.threads} torch thread(s), best of {args.repeats} alternating rounds; load average at start "
        f"{result['load_average_at_start']:.2f}. MadMiner's own path ran on {args.points} points; its scan time "
        "is that per point times the scan's points; s/point of both is measured on the same points, in one call.",
        "",
        "| method | scan points | s/point MadMiner | s/point blocks | scan s MadMiner (est.) | scan s torch tanh "
        "| scan s per point | scan s blocks | vs MadMiner | vs torch tanh | vs per point | max dlogL "
        "| max interval move |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        s, sc = r["s_per_point"], r["scan_s"]
        lines.append(
            f"| {r['method']} | {r['scan_points']} | {s['madminer']} | {s['blocks']} "
            f"| {r['madminer_scan_s_estimated']} | {sc['torch tanh']} | {sc['per point']} | {sc['blocks']} "
            f"| {r['speedup_vs_madminer']}x "
            f"| {r['speedup_vs_torch_tanh']}x | {r['speedup_vs_per_point']}x "
            f"| {r['max_abs_log_l_difference']:.1e} | {r['max_interval_move_relative']:.1e} |"
        )
    write("evaluation_speed", result, lines, args)


if __name__ == "__main__":
    main()
