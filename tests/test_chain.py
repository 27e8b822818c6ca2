"""The whole chain through the papermill driver on tiny parameters: real outputs, resume, selective
reruns after a parameter change, failure reporting and interruption."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import MADGRAPH_SM_PB, assert_run_plot, default_sigint, wait_for
from tiny import drive, ran, skipped, write_params

from madminer_notebooks.chain import STAGES, evaluation_keys, event_file_keys
from madminer_notebooks.driver.lock import LOCK_NAME
from madminer_notebooks.params import load_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def chain(tiny_run, tmp_path_factory):
    """A copy of the session's tiny run, for the tests here that rerun, delete and change things in it."""
    params, pristine, proc, seconds = tiny_run
    run_dir = tmp_path_factory.mktemp("chain") / "run"
    shutil.copytree(pristine, run_dir, symlinks=True)
    return params, run_dir, proc, seconds


def all_executions(params_path: Path) -> set[str]:
    from madminer_notebooks.chain import executions

    params = load_params(params_path)
    return {e.name for s in STAGES for e in executions(params, s)}


def test_full_chain_produces_real_results(chain):
    params_path, run_dir, proc, _ = chain
    params = load_params(params_path)
    assert ran(proc) == all_executions(params_path)
    summary = json.loads((run_dir / "summary.json").read_text())

    # Cross sections: the generator's, combined over files; the SM one is the known 1.00e-3 pb.
    for benchmark in params["generation"]["sampling_benchmarks"]:
        files = [json.loads((run_dir / "data" / "events" / f"{key}.json").read_text())
                 for b, _, key in event_file_keys(params) if b == benchmark]  # fmt: skip
        entry = summary["cross_sections"][benchmark]
        w = np.array([1 / f["cross_section_error_pb"] ** 2 for f in files])
        expected = np.sum(w * [f["cross_section_pb"] for f in files]) / w.sum()
        assert entry["value_pb"] == pytest.approx(expected, rel=1e-12) and entry["value_pb"] > 0
        assert entry["events"] == sum(f["events"] for f in files) == 2400
    assert summary["cross_sections"]["sm"]["value_pb"] == pytest.approx(MADGRAPH_SM_PB, rel=0.02)
    assert summary["cross_sections"]["w"]["value_pb"] > 10 * summary["cross_sections"]["sm"]["value_pb"]

    # Limits: finite, on the grid of the parameters, for every method and baseline.
    n = params["evaluation"]["resolution"]
    for name in evaluation_keys(params):
        limits = np.load(run_dir / "data" / "limits" / f"{name}.npz")
        assert limits["theta_grid"].shape == (n * n, 2) and limits["p_values"].shape == (n * n,)
        assert np.isfinite(limits["q"]).all() and np.all((limits["p_values"] >= 0) & (limits["p_values"] <= 1))
        assert limits["q"].min() >= 0.0  # q relative to the continuous minimum, which may lie between nodes
    # The SM (a grid point here) lies inside the 95% CL region of the rate and SALLY limits.
    for name in ("rate", "sally"):
        limits = np.load(run_dir / "data" / "limits" / f"{name}.npz")
        sm = np.flatnonzero(np.all(np.isclose(limits["theta_grid"], 0.0), axis=1))
        assert sm.size == 1 and limits["q"][sm[0]] < 5.99
        for parameter, iv in summary["limits"][name]["intervals"].items():
            assert iv["95"]["low"] <= 0.0 <= iv["95"]["high"], (name, parameter, iv)
    # SALLY with kinematics constrains CWL2 better than the rate alone.
    width = {m: summary["limits"][m]["intervals"]["CWL2"]["95"] for m in ("rate", "sally")}
    assert width["sally"]["high"] - width["sally"]["low"] < width["rate"]["high"] - width["rate"]["low"]
    # SALLY's limits keep what its own Fisher information promises (sallino, binned in equal widths):
    # measured 0.96 and 0.90 of the predicted 68% widths on these sizes, where MadMiner's 8 x 8 histogram of
    # the score gives 1.12 and 0.77 (benchmarks/sally_binning.py on a tiny run); the prediction is local, the
    # interval is not quite, hence the tolerance
    from madminer_notebooks.inference.quality import fisher_errors

    predicted = 2 * fisher_errors(summary["fisher_information"]["sally"])
    sally = summary["limits"]["sally"]["quality"]["width_68"]
    ratios = [sally[n] / p for n, p in zip(("CWL2", "CPWL2"), predicted, strict=True)]
    assert all(0.85 < r < 1.15 for r in ratios), ratios
    assert summary["tracking"] is None and not (run_dir / "mlflow.db").exists()  # tracking is off by default
    fisher = summary["fisher_information"]
    assert np.all(np.linalg.eigvalsh(np.array(fisher["truth"])) > 0)
    # the combined sample carries the cross section once, although each benchmark is in two files: after
    # cuts at most the generator's, and most of it (the two files of a benchmark without k-factors: twice it)
    from madminer.analysis import DataAnalyzer

    combined = DataAnalyzer(str(run_dir / "data" / "combined.h5")).xsecs(thetas=[np.zeros(2)])[0][0]
    generated = summary["cross_sections"]["sm"]
    assert params["generation"]["files_per_benchmark"] == 2
    assert 0.6 * generated["value_pb"] < combined <= generated["value_pb"] + 3 * generated["error_pb"]
    # the truth bound and the over-confidence flag: exact likelihoods (rate, histogram) can never beat the truth
    for name in ("rate", "histo"):
        quality = summary["limits"][name]["quality"]
        assert quality["over_confident"] is False
        assert min(quality["halfwidth_68_over_truth_bound"].values()) > 1.0
    assert "truth_covariance" in fisher and np.shape(fisher["truth_covariance"]) == (2, 2, 2, 2)
    # closure checks in the units of the limits: q on the histogram's contours, the score's orthogonality
    ratio = summary["limits"]["alice"]["closure"]
    assert {p["contour"] for p in ratio["points"]} == {"68", "95"} and len(ratio["points"]) == 16
    assert all(p["raw"]["delta_q_error"] > 0 for p in ratio["points"])
    score = summary["limits"]["sally"]["closure"]
    assert np.shape(score["orthogonality"]) == (2, 2)
    # t_xz with d log sigma / d theta subtracted averages to zero on the events it is taken on
    assert all(abs(c["mean_t_xz"]) < 1e-8 for c in score["components"].values())

    # Products: executed notebooks, plots, report; no temporary leftovers.
    names = all_executions(params_path)
    assert {p.stem for p in (run_dir / "notebooks").glob("*.ipynb")} == names
    index = (run_dir / "report" / "index.html").read_text()
    for plot in ("limits.png", "p_values.png", "cross_sections.png", "morphing_basis.png", "distributions.png"):
        assert_run_plot(run_dir / "plots" / plot)
        assert plot in index
    assert {p.stem for p in (run_dir / "report").glob("*.html")} == names | {"index"}
    assert not [p for p in run_dir.rglob(".*") if p.name not in (".ipynb_checkpoints", LOCK_NAME)]


def test_rerun_skips_everything(chain):
    params, run_dir, _, _ = chain
    manifest = (run_dir / "manifest.json").read_text()
    products = [run_dir / "summary.json", *(run_dir / "report").glob("*.html")]
    written = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in products}
    proc = drive(params, run_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ran(proc) == set() and skipped(proc) == all_executions(params)
    assert (run_dir / "manifest.json").read_text() == manifest
    # nothing ran, so the summary (with the time it records) and the report are those of the first run
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in products} == written
    assert "nothing new since the summary and the report were written: both kept" in proc.stderr


def test_deleted_output_reruns_only_its_execution(chain):
    params, run_dir, _, _ = chain
    (run_dir / "data" / "events" / "w-1.lhe.gz").unlink()
    proc = drive(params, run_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The generator is deterministic: the regenerated file has the same bytes, so nothing downstream reruns.
    assert ran(proc) == {"generation-w-1"}
    # The same for the analysis: its smearing is seeded per event file.
    (run_dir / "data" / "analysed" / "sm-0.h5").unlink()
    proc = drive(params, run_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ran(proc) == {"analysis-sm-0"}
    # the re-executed notebook's page is converted again
    page = run_dir / "report" / "analysis-sm-0.html"
    assert page.stat().st_mtime_ns > (run_dir / "notebooks" / "analysis-sm-0.ipynb").stat().st_mtime_ns


def test_changed_parameter_reruns_exactly_the_dependent_stages(chain, tmp_path):
    params, run_dir, _, _ = chain
    changed = write_params(tmp_path, {"training.epochs": 5})
    proc = drive(changed, run_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    methods = {"sally", "alice", "alices"}
    assert ran(proc) == {f"training-{m}" for m in methods} | {f"evaluation-{m}" for m in methods} | {"plotting"}
    assert {"evaluation-rate", "evaluation-histo", "sampling", "combine"} <= skipped(proc)


def test_failure_names_stage_cell_and_error_and_keeps_finished_work(chain, tmp_path):
    _, run_dir, _, _ = chain
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    empty_window = write_params(tmp_path, {"analysis.cuts": {"m_aa": [120.0, 130.0], "pt_j1_min": 6000.0}})
    proc = drive(empty_window, copy, "--stages", "..analysis")
    assert proc.returncode == 1
    message = proc.stderr
    assert "stage analysis" in message and "failed in cell" in message and "03_analysis.ipynb" in message
    assert "RuntimeError: no event of" in message and "passed the observables' requirements and cuts" in message
    assert "run the same command again to resume" in message
    assert (copy / "data" / "events" / "sm-0.lhe.gz").exists() and (copy / "data" / "setup.h5").exists()
    assert list((copy / "notebooks").glob("analysis-*.failed.ipynb"))


def test_interrupted_stage_is_redone_and_earlier_ones_are_not(chain, tmp_path):
    _, run_dir, _, _ = chain
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    changed = write_params(tmp_path, {"training.epochs": 6})
    proc = subprocess.Popen(
        [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(changed), "--run-dir", str(copy)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,  # a background CI shell starts us with SIGINT ignored, and children inherit that
    )  # fmt: skip
    wait_for("a training notebook to run", lambda: list((copy / "notebooks").glob(".training-*.running.ipynb")),
             300, proc)  # fmt: skip
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert not list((copy / "notebooks").glob(".*running*"))
    again = drive(changed, copy)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {"setup", "sampling", "combine"} <= skipped(again)
    assert {f"training-{m}" for m in ("sally", "alice", "alices")} <= ran(again) | skipped(again)
    assert any(name.startswith("training-") for name in ran(again))


def test_ctrl_c_mid_analysis_stops_within_seconds_and_records_nothing(chain, tmp_path):
    """SIGINT as ``timeout -s INT`` and shells send it (to the driver, then to its whole process group): the
    second signal must not abandon the cleanup, and the running analyses must not be recorded as done."""
    _, run_dir, _, _ = chain
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    changed = write_params(tmp_path, {"analysis.cuts": {"m_aa": [120.0, 130.0], "pt_j1_min": 31.0}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(changed), "--run-dir", str(copy)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    wait_for("an analysis notebook to run", lambda: list((copy / "notebooks").glob(".analysis-*.running.ipynb")),
             300, proc)  # fmt: skip
    time.sleep(2.0)  # inside the analysis cells
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the driver did not stop within 120 s of Ctrl-C") from None
    assert proc.returncode == 130, err[-2000:]
    before = json.loads((run_dir / "manifest.json").read_text())["executions"]
    records = json.loads((copy / "manifest.json").read_text())["executions"]
    analyses = [name for name in before if name.startswith("analysis-")]
    # the running analyses were forgotten, and nothing new was recorded (the others keep their old,
    # now outdated records: other cuts)
    assert [name for name in analyses if name not in records], sorted(records)
    assert all(records[name] == before[name] for name in analyses if name in records)
    assert {"setup", "generation-sm-0"} <= set(records)
    assert not list((copy / "notebooks").glob(".*running*"))
