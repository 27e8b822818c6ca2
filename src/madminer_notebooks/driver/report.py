"""End-of-run products: ``summary.json`` (numbers a script can check) and an HTML report (the executed
notebooks and an index page with every plot)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import json
import logging
from pathlib import Path

from .. import tracking
from ..atomic import atomic_file
from ..chain import STAGES, event_file_keys, executions
from ..inference.quality import flags
from ..paths import RunPaths
from .pages import convert_pages

log = logging.getLogger(__name__)


def cross_sections(params: dict, paths: RunPaths) -> dict:
    """Generator cross sections per sampling benchmark, combined over its event files (inverse-variance)."""
    out: dict[str, dict] = {}
    for benchmark, _, key in event_file_keys(params):
        s = json.loads(paths.generation_summary(key).read_text())
        entry = out.setdefault(benchmark, {"files": [], "events": 0})
        entry["files"].append({"key": key, "value": s["cross_section_pb"], "error": s["cross_section_error_pb"]})
        entry["events"] += s["events"]
    for entry in out.values():
        weights = [1 / f["error"] ** 2 for f in entry["files"]]
        entry["value_pb"] = sum(w * f["value"] for w, f in zip(weights, entry["files"], strict=True)) / sum(weights)
        entry["error_pb"] = sum(weights) ** -0.5
    return out


def _tracking(params: dict, paths: RunPaths) -> dict | None:
    """Where this run's MLflow runs are, when tracking is on: the store and the chain's run id tag."""
    cfg = tracking.config(params, paths)
    if cfg is None:
        return None
    return {"uri": cfg.uri, "run_id": tracking.chain_run_id(), "experiment_prefix": cfg.prefix}


def records_digest(manifest_records: dict) -> str:
    """What a summary was made from: every execution's record (notebook, parameters, inputs, outputs)."""
    return hashlib.sha256(json.dumps(manifest_records, sort_keys=True).encode()).hexdigest()


def summary_is_current(paths: RunPaths, manifest_records: dict) -> bool:
    """Whether the run folder's summary was made from exactly these records (an execution run since, by the
    driver or in JupyterLab, makes it stale)."""
    try:
        written = json.loads(paths.summary.read_text()).get("manifest_sha256")
    except (OSError, ValueError):
        return False
    return written == records_digest(manifest_records)


def write_summary(
    params: dict, params_file: Path, paths: RunPaths, manifest_records: dict, wall_seconds: float
) -> dict:
    timings: dict[str, float] = {}
    per_execution = {}
    for stage in STAGES:
        for ex in executions(params, stage, paths.root):
            rec = manifest_records.get(ex.name)
            if rec and rec.get("origin", "driver") == "driver":  # interactive runs are not timed
                timings[stage] = round(timings.get(stage, 0.0) + rec["seconds"], 2)
                per_execution[ex.name] = rec["seconds"]
    summary = {
        "params_file": str(params_file),
        "description": params.get("description"),
        "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "manifest_sha256": records_digest(manifest_records),
        "cross_sections": cross_sections(params, paths),
        "limits": json.loads(paths.intervals.read_text()),
        "fisher_information": json.loads(paths.fisher.read_text()) if paths.fisher.exists() else None,
        "tracking": _tracking(params, paths),
        "timings": {
            "wall_seconds_this_invocation": round(wall_seconds, 2),
            "notebook_seconds_per_stage": timings,
            "notebook_seconds_per_execution": per_execution,
        },
    }
    with atomic_file(paths.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary


def update_summary_and_report(params: dict, params_file: Path, paths: RunPaths, manifest_records: dict,
                              wall_seconds: float) -> Path:  # fmt: skip
    """The summary and the report, written again only when an execution ran since they were (a resumed run
    with nothing to do keeps them, and the time they record, as they are); the report's index."""
    index = paths.report / "index.html"
    if summary_is_current(paths, manifest_records) and index.exists():
        log.info("nothing new since the summary and the report were written: both kept")
        return index
    return write_report(params, paths, write_summary(params, params_file, paths, manifest_records, wall_seconds))


def write_report(params: dict, paths: RunPaths, summary: dict) -> Path:
    """HTML of every executed notebook plus an index with all plots and the interval table."""
    paths.report.mkdir(parents=True, exist_ok=True)
    links, pending = [], []
    for stage in STAGES:
        for ex in executions(params, stage, paths.root):
            nb_path = paths.notebooks / f"{ex.name}.ipynb"
            if not nb_path.exists():
                continue
            page_path = paths.report / f"{ex.name}.html"
            # a page written after its notebook's last change is that notebook's page: a resumed run that
            # re-executed nothing converts nothing
            if not page_path.exists() or page_path.stat().st_mtime_ns <= nb_path.stat().st_mtime_ns:
                pending.append((nb_path, page_path))
            links.append(f'<li><a href="{html.escape(ex.name)}.html">{html.escape(ex.name)}</a></li>')
    convert_pages(pending)

    rows = []
    for method, s in summary["limits"].items():
        q = s.get("quality", {})
        raised = flags(q)
        for name, iv in s["intervals"].items():
            cells = [
                method,
                name,
                f"{s['best_fit'][name]:+.3f}",
                f"{q.get('bias_in_halfwidths', {}).get(name, 0):+.2f}",
            ]
            for cl in ("68", "95"):
                cells.append(f"[{iv[cl]['low']:+.3f}, {iv[cl]['high']:+.3f}]")
            rel = q.get("width_95_relative_to_histo", {}).get(name)
            cells.append("" if rel is None else f"{rel:.2f}")
            to_truth = q.get("halfwidth_68_over_truth_bound", {}).get(name)
            cells.append("" if to_truth is None else f"{to_truth:.2f}")
            moved = s.get("convergence", {}).get(name, {}).get("95")
            cells.append("" if moved is None else f"{max(moved.values()):.1%}")
            cells.append("; ".join(raised))
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    fisher_rows = []
    fisher = summary.get("fisher_information") or {}
    if "truth" in fisher:
        import numpy as np

        truth = np.linalg.det(np.asarray(fisher["truth"]))
        for k, m in fisher.items():
            if k in ("parameters",) or k.endswith("covariance"):
                continue
            fisher_rows.append(f"<tr><td>{html.escape(k)}</td><td>{np.linalg.det(np.asarray(m)) / truth:.3f}</td></tr>")
    xs_rows = [
        f"<tr><td>{html.escape(b)}</td><td>{e['value_pb']:.5e}</td><td>{e['error_pb']:.2e}</td><td>{e['events']}</td></tr>"
        for b, e in summary["cross_sections"].items()
    ]
    plots = sorted(paths.plots.glob("*.png"))
    figures = "\n".join(
        f'<figure><img src="../plots/{html.escape(p.name)}" alt="{html.escape(p.stem)}" loading="lazy">'
        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
        for p in plots
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>madminer-notebooks run</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}} figure{{display:inline-block;margin:8px;vertical-align:top}}
img{{max-width:640px;border:1px solid #eee}}</style></head><body>
<h1>madminer-notebooks run</h1><p>{html.escape(str(summary.get("description") or ""))} &mdash;
parameters <code>{html.escape(summary["params_file"])}</code>, written {html.escape(summary["written"])}</p>
<h2>Expected limits (Asimov data at the SM)</h2><table><tr><th>method</th><th>parameter</th><th>best fit</th>
<th>bias [68% half-widths]</th><th>68% CL</th><th>95% CL</th><th>95% width / histogram</th>
<th>68% half-width / truth bound</th><th>last refinement moved</th><th>flags</th></tr>
{"".join(rows)}</table>
<h2>Fisher information at the SM</h2><table><tr><th>approach</th><th>det I / det I<sub>truth</sub></th></tr>
{"".join(fisher_rows)}</table>
<h2>Cross sections (generator, before analysis cuts)</h2><table><tr><th>benchmark</th><th>&sigma; [pb]</th>
<th>error [pb]</th><th>events</th></tr>{"".join(xs_rows)}</table>
<h2>Executed notebooks</h2><ul>{"".join(links)}</ul><h2>Plots</h2>{figures}</body></html>"""
    index = paths.report / "index.html"
    with atomic_file(index) as tmp:
        tmp.write_text(page)
    return index
