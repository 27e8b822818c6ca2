"""Expected limits, Fisher information and closure numbers of the presets, with how long the chain took: the
numbers the README quotes, from runs of the README's main command.

    .venv/bin/python benchmarks/limits.py [--runs-dir runs/limits] [--only NAME ...] [--collect NAME=RUN ...]

Each configuration below is run with ``drivers/run`` into ``RUNS/NAME`` (a finished run folder is resumed,
so nothing is redone), then read back. The pairs that differ only in ``generation.files_per_benchmark`` are
the check that the limits do not depend on how the events were split into files (issue 21): their numbers must
agree within the Monte-Carlo error of the events themselves. ``--collect NAME=RUN`` adds an existing run
folder as it is (for instance one made by an earlier version of the chain, for a before/after comparison).

Writes ``benchmarks/results/limits.json`` and ``limits.md``, and the tables of the README and docs/ (their
``<!-- generated: NAME -->`` blocks), rendered from the JSON by :func:`readme_tables`; a test checks that every
page quotes them unchanged. ``--only`` with no name and ``--retire NAME`` takes the results of an earlier
version of the chain out of the tables without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from madminer_notebooks.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: name -> (preset, overrides)
CONFIGURATIONS: dict[str, tuple[str, dict]] = {
    "quick": ("quick", {}),
    "quick-3-files": ("quick", {"generation.files_per_benchmark": 3}),
    "tutorial-shower": ("tutorial", {}),
    "tutorial-shower-1-file": ("tutorial", {"generation.files_per_benchmark": 1}),
    "tutorial-parton": ("tutorial", {"analysis.level": "parton", "analysis.shower": None}),
    "tutorial-parton-1-file": (
        "tutorial",
        {"analysis.level": "parton", "analysis.shower": None, "generation.files_per_benchmark": 1},
    ),
}


def run(name: str, runs_dir: Path) -> tuple[Path, float, float, bool]:
    """``drivers/run`` on one configuration; (run folder, wall seconds, load average before, whether an
    earlier run had done some of it: then the wall time covers only what was left)."""
    from madminer_notebooks.params import load_params, with_overrides

    preset, overrides = CONFIGURATIONS[name]
    params = with_overrides(load_params(ROOT / "params" / f"{preset}.yaml"), overrides)
    folder = runs_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    params_file = folder / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    resumed = (folder / "run" / "manifest.json").exists()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    command = [str(ROOT / "drivers" / "run"), "--params", str(params_file), "--run-dir", str(folder / "run")]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: drivers/run failed:\n{proc.stderr[-3000:]}")
    return folder / "run", time.perf_counter() - start, load, resumed


def _fisher_errors(matrix) -> list[float]:
    from madminer_notebooks.inference.quality import fisher_errors

    return [float(v) for v in fisher_errors(matrix)]


def read_run(run_dir: Path) -> dict:
    """The numbers of one finished run folder (older run folders lack some; those are left out)."""
    from madminer.analysis import DataAnalyzer

    from madminer_notebooks.params import load_params

    summary = json.loads((run_dir / "summary.json").read_text())
    params = load_params(summary["params_file"])
    names = list(params["physics"]["parameters"])
    xsec = DataAnalyzer(str(run_dir / "data" / "combined.h5")).xsecs(thetas=[np.zeros(len(names))])[0][0]
    out: dict = {
        "params_file": summary["params_file"],
        "level": params["analysis"].get("level") or "parton",
        "files_per_benchmark": params["generation"].get("files_per_benchmark"),
        "events_per_benchmark": params["generation"].get("events_per_benchmark"),
        "sm_cross_section_pb": {
            "generator": summary["cross_sections"]["sm"]["value_pb"],
            "generator_error": summary["cross_sections"]["sm"]["error_pb"],
            "combined_after_cuts": float(xsec),
        },  # fmt: skip
        "methods": {},
        "fisher_diagonal": {},
        "fisher_errors": {},
        "timings": summary.get("timings", {}),
    }
    fisher = summary.get("fisher_information") or {}
    for key, matrix in fisher.items():
        if key == "parameters" or key.endswith("covariance"):
            continue
        out["fisher_diagonal"][key] = [float(v) for v in np.diag(np.asarray(matrix))]
        out["fisher_errors"][key] = _fisher_errors(matrix)
    for method in METHODS:  # the methods table, in its order
        r = summary["limits"].get(method)
        if r is None:
            continue
        q = r.get("quality", {})
        entry = {
            "best_fit": [r["best_fit"][n] for n in names],
            "bias_in_halfwidths": [q.get("bias_in_halfwidths", {}).get(n) for n in names],
            "width_68": [r["intervals"][n]["68"]["high"] - r["intervals"][n]["68"]["low"] for n in names],
            "width_95": [r["intervals"][n]["95"]["high"] - r["intervals"][n]["95"]["low"] for n in names],
            "width_68_relative_to_histo": [q.get("width_68_relative_to_histo", {}).get(n) for n in names],
            "width_95_relative_to_histo": [q.get("width_95_relative_to_histo", {}).get(n) for n in names],
            "halfwidth_68_over_truth_bound": [q.get("halfwidth_68_over_truth_bound", {}).get(n) for n in names],
            "information_fraction": [q.get("information_fraction", {}).get(n) for n in names],
            "over_confident": q.get("over_confident"),
        }
        key = METHODS[method].fisher_key
        if key in fisher:  # what the method's own Fisher information predicts for its 68% width (inf: nothing)
            entry["fisher_width_68"] = [2.0 * v for v in _fisher_errors(fisher[key])]
            entry["width_68_over_fisher"] = list(np.divide(entry["width_68"], entry["fisher_width_68"]))
        closure = r.get("closure")
        if closure and "max_abs_delta_q" in closure:
            entry["closure"] = {"max_abs_delta_q": closure["max_abs_delta_q"], "passed": closure["passed"]}
        elif closure and "max_orthogonality" in closure:
            entry["closure"] = {"max_orthogonality": closure["max_orthogonality"],
                                "max_bias_in_std": closure["max_bias_in_std"], "passed": closure["passed"]}  # fmt: skip
        out["methods"][method] = entry
    out["parameters"] = names
    return out


def _pair(values, fmt: str) -> str:
    if values is None or any(v is None for v in values):
        return "–"
    return "(" + ", ".join(format(v, fmt) for v in values) + ")"


def limits_table(results: dict, names: list[str]) -> str:
    """Per configuration and method: 68% widths, bias, 68% width relative to the histogram's, the share of
    the truth's information the limits reach, 68% width relative to the method's own Fisher prediction,
    closure."""
    lines = [
        "| run | method | 68% width (CWL2, CPWL2) | bias [half-widths] | width / histogram"
        " | share of truth information | width / own Fisher | closure |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        r = results["runs"][name]
        for method, m in r["methods"].items():
            closure = m.get("closure")
            if closure is None:
                text = ""
            elif "max_abs_delta_q" in closure:
                d = closure["max_abs_delta_q"]
                text = ", ".join(f"{k} {v:.2f}" for k, v in d.items()) + " (max abs Δq)"
            else:
                text = f"orthogonality {closure['max_orthogonality']:.3f}"
            if closure is not None and not closure["passed"]:
                text += " ⚠ failed"
            flag = " ⚠ over-confident" if m.get("over_confident") else ""
            predicted = np.isfinite(m.get("fisher_width_68", [np.inf])).all()  # the rate's is infinite
            cells = [
                _pair(m["width_68"], ".3f"),
                _pair(m["bias_in_halfwidths"], "+.2f"),
                _pair(m.get("width_68_relative_to_histo"), ".2f"),
                _pair(m.get("information_fraction"), ".2f") + flag,
                _pair(m["width_68_over_fisher"], ".2f") if predicted else "",
                text,
            ]
            lines.append(f"| {name} | {METHODS[method].label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fisher_table(results: dict, names: list[str]) -> str:
    """Per configuration: the truth bound (68% half-widths from the parton-level truth's Fisher information)
    and each approach's information as a share of the truth's, per parameter, the other profiled."""
    keys = [
        ("sally", "SALLY (linear, scale-free)"),
        ("sally_outer", "SALLY, N E[t t]"),
        ("histo_2d", "2D histogram"),
        ("rate", "rate"),
    ]
    lines = [
        "| run | truth bound (68% half-width) | " + " | ".join(label for _, label in keys) + " |",
        "| --- | --- |" + " --- |" * len(keys),
    ]
    for name in names:
        errors = results["runs"][name]["fisher_errors"]
        truth = np.asarray(errors["truth"])
        shares = {k: list((truth / np.asarray(errors[k])) ** 2) for k, _ in keys if k in errors}
        cells = [_pair(list(truth), ".3f")] + [_pair(shares.get(k), ".2f") for k, _ in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing_table(results: dict, names: list[str]) -> str:
    stages = ("setup", "generation", "analysis", "combine", "sampling", "training", "evaluation", "plotting")
    lines = ["| stage (notebook seconds) | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for stage in stages:
        cells = [f"{results['runs'][n]['timings'].get('notebook_seconds_per_stage', {}).get(stage, float('nan')):.0f}"
                 for n in names]  # fmt: skip
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    walls = [f"{results['runs'][n]['wall_seconds']:.0f} s" + (" (resumed)" if results["runs"][n].get("resumed") else "")
             for n in names]  # fmt: skip
    lines.append("| end to end (`drivers/run`, wall) | " + " | ".join(walls) + " |")
    loads = [f"{results['runs'][n]['load_before']:.1f}" for n in names]
    lines.append("| load average at the start | " + " | ".join(loads) + " |")
    return "\n".join(lines)


#: The runs of the README's own table (the others are in docs/statistics.md).
HEADLINE = ("quick", "tutorial-shower")


def readme_tables(results: dict) -> dict[str, str]:
    """The generated tables of the README and docs/, by marker name."""
    current = [n for n in CONFIGURATIONS if n in results["runs"]]
    return {
        "headline": limits_table(results, [n for n in HEADLINE if n in current]),
        "limits": limits_table(results, current),
        "fisher": fisher_table(results, current),
        "timings": timing_table(results, [n for n in current if "wall_seconds" in results["runs"][n]]),
    }


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def write_pages(tables: dict[str, str]) -> list[Path]:
    """Replace every ``<!-- generated: NAME ... -->`` block of the README and docs/ with its table; returns
    the pages that changed (tests/test_readme_numbers.py checks that they agree)."""
    import re

    changed = []
    for page in PAGES:
        text = page.read_text()
        new = re.sub(
            r"(<!-- generated: (\w+) [^\n]*-->\n)(.*?)(<!-- end: \2 -->)",
            lambda m: m.group(1) + tables[m.group(2)] + "\n" + m.group(4) if m.group(2) in tables else m.group(0),
            text,
            flags=re.S,
        )
        if new != text:
            page.write_text(new)
            changed.append(page)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "limits")
    parser.add_argument("--only", nargs="*", choices=list(CONFIGURATIONS), default=None)
    parser.add_argument("--collect", nargs="*", default=[], metavar="NAME=RUN")
    parser.add_argument("--retire", nargs="*", default=[], metavar="NAME",
                        help="move a configuration's results, made by an earlier version of the chain, out of the "
                             "tables (into 'collected', as 'NAME (retired)')")  # fmt: skip
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    path = RESULTS / "limits.json"
    done: dict = {}
    for name in args.only if args.only is not None else list(CONFIGURATIONS):
        run_dir, seconds, load, resumed = run(name, args.runs_dir)
        done[name] = {**read_run(run_dir), "wall_seconds": round(seconds, 1), "load_before": load, "resumed": resumed}
        print(f"{name}: {seconds:.0f} s", flush=True)
    # read only now: another instance (other configurations) may have written its results meanwhile
    results = json.loads(path.read_text()) if path.exists() else {"runs": {}, "collected": {}}
    results["runs"].update(done)
    for name in args.retire:
        old = results["runs"].pop(name)
        results["collected"][f"{name} (retired)"] = old
    for item in args.collect:
        name, _, folder = item.partition("=")
        results["collected"][name] = read_run(Path(folder))
    path.write_text(json.dumps(results, indent=2) + "\n")
    tables = readme_tables(results)
    (RESULTS / "limits.md").write_text(
        "# Expected limits, Fisher information and timings (benchmarks/limits.py)\n\n"
        "Asimov data at the SM, 300 fb^-1; widths of each parameter with the other profiled.\n\n"
        + "\n\n".join(tables.values())
        + "\n"
    )
    for page in write_pages(tables):
        print(f"updated {page.relative_to(ROOT)}")
    print(json.dumps({k: v["methods"].get("histo", {}).get("width_68") for k, v in results["runs"].items()}))


if __name__ == "__main__":
    main()
