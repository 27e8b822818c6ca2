"""The whole chain of this checkout against an earlier commit's, side by side in one benchmark run: each from
an empty run folder with the README's main command, one after the other (no overlap), the same parameter
file. Reported: wall time of each, their ratio, every stage's notebook seconds (from each run's
``summary.json``) and every method's widths relative to the histogram and closure.

    .venv/bin/python benchmarks/chain_vs_commit.py --commit 203917f [--params params/quick.yaml] [--rounds 1]

The earlier commit is checked out as a git worktree under ``--work`` with its own environment (its
``drivers/run`` builds it the first time; that is not timed). Writes ``benchmarks/results/chain_vs_<commit>
_<params>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def worktree(commit: str, work: Path) -> Path:
    """A checkout of ``commit`` (made once) whose environment is ready."""
    tree = work / f"tree-{commit}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True)
    subprocess.run([str(tree / "drivers" / "ensure-env")], check=True)
    return tree


def run_chain(tree: Path, params: Path, run_dir: Path) -> dict:
    """One timed chain from an empty run folder; its summary with the wall time added."""
    shutil.rmtree(run_dir, ignore_errors=True)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run([str(tree / "drivers" / "run"), "--params", str(params), "--run-dir", str(run_dir)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - start
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"wall_s": round(wall, 1), "load_at_start": round(load, 2), "summary": summary}


def methods(summary: dict) -> dict:
    """Per method: 68% widths relative to the histogram's, bias in half-widths, closure passed."""
    out = {}
    for name, result in summary["limits"].items():
        quality = result.get("quality", {})
        closure = result.get("closure") or {}
        out[name] = {
            "width_68_relative_to_histo": {k: round(v, 3) for k, v in quality["width_68_relative_to_histo"].items()},
            "bias_in_halfwidths": {k: round(v, 2) for k, v in quality["bias_in_halfwidths"].items()},
            "closure_passed": closure.get("passed"),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", required=True, help="the earlier commit (the peer)")
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "quick.yaml")
    parser.add_argument("--rounds", type=int, default=1, help="pairs of runs (the order alternates)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "chain-vs-commit")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.commit], check=True,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip
    trees = {"this": ROOT, commit: worktree(commit, args.work)}
    runs: dict[str, list[dict]] = {"this": [], commit: []}
    for i in range(args.rounds):
        order = ["this", commit] if i % 2 else [commit, "this"]
        for who in order:
            runs[who].append(run_chain(trees[who], args.params.resolve(), args.work / f"run-{who}-{i}"))
            print(who, runs[who][-1]["wall_s"], "s", flush=True)
    stages = list(runs["this"][0]["summary"]["timings"]["notebook_seconds_per_stage"])

    def stage_seconds(who: str, stage: str) -> float:
        return round(min(r["summary"]["timings"]["notebook_seconds_per_stage"][stage] for r in runs[who]), 1)

    walls = {who: min(r["wall_s"] for r in rs) for who, rs in runs.items()}
    result = {
        "benchmark": "chain_vs_commit",
        "params": args.params.name,
        "this": f"{head} + working tree",
        "peer": commit,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "wall_s": walls,
        "wall_ratio": round(walls["this"] / walls[commit], 3),
        "load_at_start": {who: [r["load_at_start"] for r in rs] for who, rs in runs.items()},
        "notebook_seconds_per_stage": {s: {who: stage_seconds(who, s) for who in runs} for s in stages},
        "methods": {who: methods(rs[-1]["summary"]) for who, rs in runs.items()},
    }
    stem = f"chain_vs_{commit}_{args.params.stem}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"# {args.params.name}: this checkout against {commit} (benchmarks/chain_vs_commit.py)",
        "",
        f"Whole-process timings of `drivers/run` from empty run folders, {args.rounds} pair(s), one after the "
        f"other, {os.cpu_count()} cores; the best of each.",
        "",
        f"Wall time: **{walls['this']:.0f} s** against {walls[commit]:.0f} s: **{result['wall_ratio']:.2f}x**.",
        "",
        f"| stage | notebook s, {commit} | notebook s, this | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for s in stages:
        a, b = result["notebook_seconds_per_stage"][s][commit], result["notebook_seconds_per_stage"][s]["this"]
        lines.append(f"| {s} | {a} | {b} | {b / a:.2f}x |" if a else f"| {s} | {a} | {b} | |")
    lines += ["", "| method | widths / histo, " + commit + " | widths / histo, this | closure, this |",
              "| --- | --- | --- | --- |"]  # fmt: skip
    for name, m in result["methods"]["this"].items():
        old = result["methods"][commit].get(name, {}).get("width_68_relative_to_histo", {})
        lines.append(f"| {name} | {' / '.join(str(v) for v in old.values())} | "
                     f"{' / '.join(str(v) for v in m['width_68_relative_to_histo'].values())} | "
                     f"{m['closure_passed']} |")  # fmt: skip
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
