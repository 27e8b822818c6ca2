"""The scan behind the presets' training settings: quick.yaml with a ``scan`` section, tracked in MLflow,
run by the README's main command; its comparison is copied to ``benchmarks/results/training_scan.*``.

    .venv/bin/python benchmarks/training_scan.py [--runs-dir runs/training-scan]

Every scan point samples, trains and evaluates again on the same events (the base run's), so the points
differ only in what is scanned. The MLflow store is ``RUN/mlflow.db``: ``mlflow ui --backend-store-uri
sqlite:///RUN/mlflow.db`` shows every point's per-epoch losses and intervals (tagged ``mmnb.scan_point``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: what is scanned around quick.yaml's own settings (one of the points is quick.yaml itself)
SCAN = {
    "training.hidden": [[50, 50], [100, 100]],
    "training.epochs": [15, 30],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "training-scan")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params" / "quick.yaml").read_text())
    params["scan"] = SCAN
    params["tracking"] = {"enabled": True}
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    params_file = args.runs_dir / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    load = os.getloadavg()[0]
    start = time.perf_counter()
    run_dir = args.runs_dir / "run"
    subprocess.run([str(ROOT / "drivers" / "run"), "--params", str(params_file), "--run-dir", str(run_dir)], check=True)
    seconds = time.perf_counter() - start
    for suffix in ("md", "json", "png"):
        shutil.copyfile(run_dir / "scan" / f"comparison.{suffix}", RESULTS / f"training_scan.{suffix}")
    table = (RESULTS / "training_scan.md").read_text()
    (RESULTS / "training_scan.md").write_text(
        "# Training scan around params/quick.yaml (benchmarks/training_scan.py)\n\n"
        f"Scanned: {json.dumps(SCAN)}; every other setting as in quick.yaml. Expected limits on SM Asimov data,\n"
        f"300 fb^-1. Wall time of the whole run with its scan: {seconds:.0f} s (load average at the start "
        f"{load:.1f}).\n\n" + table
    )
    print(table)


if __name__ == "__main__":
    main()
