"""Wall time of the tutorial chain through the papermill driver, per stage, and the driver's overhead
against the same notebook code run as plain Python scripts.

    .venv/bin/python benchmarks/chain_timing.py [--params params/quick.yaml]

1. ``drivers/run`` on the parameters with their own parallelism (the README's main command);
2. the driver again with one execution at a time, and every execution's notebook turned into a script
   (parameters injected exactly as papermill does) and run with ``python``, one at a time, in the same
   order. The overhead is the difference of the two totals. Results go to benchmarks/results/chain.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def plain_python_run(params_file: Path, run_dir: Path, folder: Path) -> tuple[float, dict[str, float]]:
    from nbconvert import PythonExporter
    from papermill.execute import prepare_notebook_metadata
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from madminer_notebooks.chain import STAGES, executions
    from madminer_notebooks.params import load_params

    params = load_params(params_file)
    exporter = PythonExporter()
    seconds: dict[str, float] = {}
    for stage in STAGES:
        for ex in executions(params, stage, run_dir):
            source = ROOT / "notebooks" / ex.notebook
            nb = prepare_notebook_metadata(load_notebook_node(str(source)), str(source), "", False)
            nb = parameterize_notebook(nb, {"params_file": str(params_file), "run_dir": str(run_dir), **ex.parameters})
            script, _ = exporter.from_notebook_node(nb)
            path = folder / f"{ex.name}.py"
            path.write_text(script)
            seconds[ex.name] = timed([sys.executable, str(path)], cwd=ROOT / "notebooks")
    return sum(seconds.values()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "quick.yaml")
    args = parser.parse_args()
    params_file = args.params.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        driver = [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(params_file)]
        wall_parallel = timed([*driver, "--run-dir", str(tmp / "parallel")])
        summary = json.loads((tmp / "parallel" / "summary.json").read_text())
        wall_serial = timed([*driver, "--run-dir", str(tmp / "serial"), "--parallel", "1"])
        manifest = json.loads((tmp / "serial" / "manifest.json").read_text())["executions"]
        notebook_total = sum(r["seconds"] for r in manifest.values())
        plain_total, plain = plain_python_run(params_file, tmp / "plain", tmp)

    results = {
        "params": str(params_file.relative_to(ROOT)),
        "wall_seconds_parallel": round(wall_parallel, 1),
        "stage_notebook_seconds": summary["timings"]["notebook_seconds_per_stage"],
        "serial": {
            "driver_wall_seconds": round(wall_serial, 1),
            "papermill_seconds_sum": round(notebook_total, 1),
            "plain_python_seconds_sum": round(plain_total, 1),
            "overhead_vs_plain_python": round(wall_serial / plain_total - 1, 3),
            "per_execution": {
                k: {"papermill": manifest[k]["seconds"], "python": round(v, 2)} for k, v in plain.items()
            },
        },
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "chain.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"Parameters: `{results['params']}`",
        "",
        f"- end to end through `drivers/run` (parallel as in the params): {wall_parallel:.0f} s",
        f"- one execution at a time: driver {wall_serial:.0f} s, the same code as plain Python scripts "
        f"{plain_total:.0f} s: overhead {100 * results['serial']['overhead_vs_plain_python']:.1f}%",
        "",
        "| stage | notebook seconds (sum over executions) |",
        "| --- | ---: |",
    ] + [f"| {k} | {v:.1f} |" for k, v in results["stage_notebook_seconds"].items()]
    (out / "chain.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
