"""Ctrl-C latency of the driver: SIGINT in the middle of the analysis stage, sent as ``timeout -s INT`` and
shells send it (to the driver, then 0.3 s later to its whole process group), N times.

    .venv/bin/python benchmarks/ctrl_c_latency.py [--params params/quick.yaml] [--tries 5]

Prints, per try, the seconds from the first SIGINT to the driver's exit, its exit status, and whether the
manifest recorded any analysis (it must not); writes benchmarks/results/ctrl_c.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def driver(params: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(params), "--run-dir",
            str(run_dir), *extra]  # fmt: skip


def one_try(params: Path, run_dir: Path) -> dict:
    for name in (run_dir / "data" / "analysed").glob("*"):
        name.unlink()
    proc = subprocess.Popen(driver(params, run_dir, "--stages", "analysis"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and not list((run_dir / "notebooks").glob(".analysis-*.running.ipynb")):
        time.sleep(0.05)
    time.sleep(2.0)  # inside the analysis cells
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=300)
    latency = time.monotonic() - sent
    records = json.loads((run_dir / "manifest.json").read_text())["executions"]
    return {"seconds": round(latency, 2), "exit": proc.returncode,
            "analysis_recorded": sorted(n for n in records if n.startswith("analysis-"))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(ROOT / "params" / "quick.yaml"))
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    params = Path(args.params).resolve()
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        subprocess.run(driver(params, run_dir, "--stages", "..generation"), check=True, capture_output=True)
        tries = []
        for i in range(args.tries):
            tries.append(one_try(params, run_dir))
            print(f"try {i + 1}: {tries[-1]}", flush=True)
    load = os.getloadavg()[0]
    out = ROOT / "benchmarks" / "results" / "ctrl_c.json"
    out.write_text(json.dumps({"params": str(params.relative_to(ROOT)), "load_1min": load, "tries": tries}, indent=2))
    print(f"wrote {out} (1-minute load {load:.2f})")


if __name__ == "__main__":
    main()
