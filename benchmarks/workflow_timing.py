"""The combined Yadage workflow run locally (drivers/yadage, steps as local processes) against the papermill
driver (drivers/run), on the same parameters, in the same session; and how the scattered stages spread.

    .venv/bin/python benchmarks/workflow_timing.py [--params params/quick.yaml] [--containers]

``--containers`` also runs the workflow with the docker executor (every step in the workflow image, built
with drivers/build-image, as UID 12345:0 on a read-only image), and reports its wall time against the
local executor's and the driver's.

For each scattered stage of the workflow run it reports the sum of its steps' own durations (process start
to finish, from packtivity's step logs) against the span from its first step's start to its last step's
end: their ratio is the parallelism the stage achieved. Both runs start from empty folders, and their
summaries are compared. Results go to benchmarks/results/workflow.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def _stamp(line: str) -> float:
    return dt.datetime.strptime(STAMP.match(line).group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def step_spans(work_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """(start, end) of every step, grouped by stage; from the first and last line of its packtivity logs."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for step_log in work_dir.glob("*/*/_packtivity/*.step.log"):
        lines = [ln for p in step_log.parent.glob("*.log") for ln in p.read_text().splitlines() if STAMP.match(ln)]
        times = sorted(_stamp(ln) for ln in lines)
        stage = re.sub(r"_\d+$", "", step_log.parent.parent.name)
        spans.setdefault(stage, []).append((times[0], times[-1]))
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "quick.yaml")
    parser.add_argument("--containers", action="store_true", help="the docker executor too")
    args = parser.parse_args()
    params = args.params.resolve()
    with tempfile.TemporaryDirectory(prefix="mmnb-bench-") as tmp:
        folder = Path(tmp)
        papermill = timed([str(ROOT / "drivers" / "run"), "--params", str(params), "--run-dir", str(folder / "run")])
        yadage = timed([str(ROOT / "drivers" / "yadage"), "--params", str(params), "--work-dir", str(folder / "wf"),
                        "--executor", "local"])  # fmt: skip
        spans_fresh = step_spans(folder / "wf")  # before the resume appends to the step logs
        resume = timed([str(ROOT / "drivers" / "yadage"), "--params", str(params), "--work-dir", str(folder / "wf"),
                        "--executor", "local"])  # fmt: skip
        docker = None
        if args.containers:
            docker = timed([str(ROOT / "drivers" / "yadage"), "--params", str(params), "--work-dir",
                            str(folder / "wf-docker"), "--executor", "docker"])  # fmt: skip
        a = json.loads((folder / "run" / "summary.json").read_text())
        keys = ("cross_sections", "limits", "fisher_information")
        same = all(a[k] == json.loads((folder / "wf" / "summary.json").read_text())[k] for k in keys)
        same_docker = None
        if docker is not None:
            c = json.loads((folder / "wf-docker" / "summary.json").read_text())
            same_docker = all(a[k] == c[k] for k in keys)
        stages = {}
        for stage, spans in sorted(spans_fresh.items()):
            busy = sum(end - start for start, end in spans)
            span = max(end for _, end in spans) - min(start for start, _ in spans)
            stages[stage] = {"steps": len(spans), "step_seconds": round(busy, 1), "span_seconds": round(span, 1),
                             "parallelism": round(busy / span, 2) if span else None}  # fmt: skip
    result = {
        "params": str(params.relative_to(ROOT)) if params.is_relative_to(ROOT) else str(params),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "papermill_driver_seconds": round(papermill, 1),
        "yadage_local_seconds": round(yadage, 1),
        "yadage_resume_seconds": round(resume, 1),
        "same_summary": same,
        "yadage_docker_seconds": round(docker, 1) if docker is not None else None,
        "same_summary_docker": same_docker,
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "stages": stages,
    }
    out = ROOT / "benchmarks" / "results"
    (out / "workflow.json").write_text(json.dumps(result, indent=2))
    rows = "\n".join(
        f"| {s} | {v['steps']} | {v['step_seconds']} | {v['span_seconds']} | {v['parallelism']} |"
        for s, v in stages.items()
    )
    (out / "workflow.md").write_text(
        f"# Yadage (local executor) vs papermill driver, {result['params']}, {result['cores']} cores\n\n"
        f"| run | wall seconds |\n| --- | --- |\n| drivers/run (papermill) | {result['papermill_driver_seconds']} |\n"
        f"| drivers/yadage, fresh | {result['yadage_local_seconds']} |\n"
        f"| drivers/yadage, resumed (nothing to do) | {result['yadage_resume_seconds']} |\n"
        + (f"| drivers/yadage --executor docker, fresh | {result['yadage_docker_seconds']} |\n" if docker else "")
        + f"\nSummaries identical to the driver's: local executor {same}"
        + (f", docker executor {same_docker}" if docker else "")
        + f" (load average at the end {' '.join(result['load_average'])})\n\n"
        f"| stage | steps | sum of step seconds | stage span seconds | parallelism |\n| --- | --- | --- | --- | --- |\n"
        f"{rows}\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
