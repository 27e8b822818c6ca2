"""The generator's command line: bad input fails fast with one clear line and leaves no file behind."""

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import default_sigint, last_json, make_setup, run_generator, wait_for


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture()
def outdir(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _fails(outdir, *args, env=None, match: str):
    proc = run_generator(*args, env=env, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert match in lines[0], lines[0]
    assert _files(outdir) == []  # no partial output, no temporary files
    return lines[0]


def _args(setup, outdir, **over):
    opts = {"--setup": str(setup), "--benchmark": "sm", "--events": "100", "--seed": "1",
            "--output": str(outdir / "ev.lhe.gz")}  # fmt: skip
    opts.update(over)
    return [x for kv in opts.items() for x in kv]


def test_success_prints_json_summary_last(setup_file, outdir):
    proc = run_generator(*_args(setup_file, outdir, **{"--events": "500"}))
    summary = last_json(proc.stdout)
    for key in ("benchmark", "events", "cross_section_pb", "cross_section_error_pb", "seconds"):
        assert key in summary
    assert summary["events"] == 500 and summary["benchmark"] == "sm"
    assert 0 < summary["cross_section_error_pb"] < 0.01 * summary["cross_section_pb"]
    assert _files(outdir) == ["ev.lhe.gz"]


def test_unknown_benchmark(setup_file, outdir):
    _fails(outdir, *_args(setup_file, outdir, **{"--benchmark": "bsm7"}), match="'bsm7' is not in setup")


def test_setup_with_an_unknown_lha_entry(tmp_path, outdir):
    bad = make_setup(tmp_path / "bad.h5", {"sm": (0, 0), "w": (1, 0)}, lha_ids=(3, 5), morphing=False)
    _fails(outdir, *_args(bad, outdir), match="LHA block 'dim6' id 3")


def test_setup_with_a_nonlinear_transform(tmp_path, outdir):
    bad = make_setup(tmp_path / "nl.h5", {"sm": (0, 0), "w": (1, 0)}, transform="16.52*theta**2", morphing=False)
    _fails(outdir, *_args(bad, outdir), match="not linear in theta")


def test_missing_setup(outdir):
    _fails(outdir, *_args(outdir.parent / "nope.h5", outdir), match="does not exist")


@pytest.mark.parametrize("events", ["0", "-5"])
def test_non_positive_event_count(setup_file, outdir, events):
    _fails(outdir, *_args(setup_file, outdir, **{"--events": events}), match="positive number of events")


def test_unknown_scale(setup_file, outdir):
    _fails(outdir, *_args(setup_file, outdir, **{"--scale": "dynamic7"}), match="unknown scale 'dynamic7'")


def test_unwritable_output(setup_file, outdir):
    # /proc accepts no new files, not even from root.
    _fails(outdir, *_args(setup_file, outdir, **{"--output": "/proc/ev.lhe.gz"}), match="/proc is not writable")


def test_missing_output_folder(setup_file, outdir):
    _fails(outdir, *_args(setup_file, outdir, **{"--output": str(outdir / "no" / "ev.lhe.gz")}), match="does not exist")


def test_missing_pdf_grid(setup_file, outdir, tmp_path):
    _fails(outdir, *_args(setup_file, outdir), env={"MMNB_PDF_PATH": str(tmp_path)}, match="PDF grid")


def test_ctrl_c_leaves_no_file(setup_file, outdir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "madminer_notebooks.generator", "--no-progress",
         *_args(setup_file, outdir, **{"--events": "3000000", "--jobs": "2"})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,  # a background CI shell starts us with SIGINT ignored, and children inherit that
    )  # fmt: skip
    wait_for("generation to write its temporary parts",
             lambda: any(p.name.startswith(".ev.lhe.gz.") for p in outdir.iterdir()), 120, proc)  # fmt: skip
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert _files(outdir) == []
    assert not out.strip() or "cross_section_pb" not in json.dumps(out)
