"""What MLflow tracking costs: the ML stages (sampling..plotting) of the same physics run, untracked,
tracked into the run folder's SQLite store, and tracked on a local ``mlflow server``.

    .venv/bin/python benchmarks/tracking_overhead.py [--params params/quick.yaml]

The physics stages run once; each variant then runs sampling..plotting in its own copy of that run folder.
Results go to benchmarks/results/tracking.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def drive(params: Path, run_dir: Path, stages: str, env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(params), "--run-dir",
         str(run_dir), "--stages", stages],
        capture_output=True, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return time.perf_counter() - start


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{folder / 'db'}",
         "--artifacts-destination", (folder / "artifacts").as_uri(), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("mlflow server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "quick.yaml")
    args = parser.parse_args()
    import yaml

    with tempfile.TemporaryDirectory(prefix="mmnb-bench-") as tmp:
        folder = Path(tmp)
        drive(args.params, folder / "physics", "..combine")
        params = yaml.safe_load(args.params.read_text())
        tracked = folder / "tracked.yaml"
        tracked.write_text(yaml.safe_dump({**params, "tracking": {"enabled": True}}, sort_keys=False))
        server, url = start_server(folder / "server")
        seconds = {}
        try:
            for name, params_file, env in (
                ("untracked", args.params, {"MLFLOW_TRACKING_URI": "none"}),
                ("SQLite in the run folder", tracked, {"MLFLOW_TRACKING_URI": "none"}),
                ("mlflow server on 127.0.0.1", args.params, {"MLFLOW_TRACKING_URI": url}),
            ):
                run_dir = folder / name.split()[0]
                shutil.copytree(folder / "physics", run_dir)
                seconds[name] = round(drive(params_file, run_dir, "sampling..", env), 1)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
    result = {"params": str(args.params), "cores": os.cpu_count(), "ml_stage_seconds": seconds}
    out = ROOT / "benchmarks" / "results"
    (out / "tracking.json").write_text(json.dumps(result, indent=2))
    base = seconds["untracked"]
    rows = "\n".join(f"| {k} | {v} | {v - base:+.1f} |" for k, v in seconds.items())
    (out / "tracking.md").write_text(
        f"# MLflow tracking overhead, sampling..plotting, {args.params.name}, {result['cores']} cores\n\n"
        f"| tracking | wall seconds | vs untracked |\n| --- | --- | --- |\n{rows}\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
