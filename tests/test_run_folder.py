"""The run folder under what users do to it: two drivers at once, a full disk, a read-only folder, a driver
killed with SIGKILL in the middle of a stage. Each test runs the real driver on the tiny parameters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import wait_for
from tiny import drive, ran, skipped, write_params

from madminer_notebooks.atomic import is_temporary
from madminer_notebooks.driver.lock import LOCK_NAME, run_folder_lock
from madminer_notebooks.driver.manifest import file_sha256


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(folder, size, read_only)``: a tmpfs of ``size`` at ``folder``, unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = []

    def mount(folder: Path, size: str, read_only: bool = False) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if is_temporary(p.name)]


def records(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())["executions"]


def assert_records_match_files(run_dir: Path) -> None:
    """Every execution recorded as done has its outputs on disk, byte for byte as recorded."""
    for name, record in records(run_dir).items():
        for rel, sha in record["outputs"].items():
            assert (run_dir / rel).is_file(), (name, rel)
            assert file_sha256(run_dir / rel) == sha, (name, rel)


def start(params: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(params), "--run-dir",
         str(run_dir), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_second_driver_refuses_at_once_naming_the_holder(tmp_path):
    params = write_params(tmp_path)
    run_dir = tmp_path / "run"
    first = start(params, run_dir, "--stages", "..analysis")  # long enough to still run when the second comes
    try:
        wait_for("the first driver to hold the lock",
                 lambda: f"PID {first.pid}," in (run_dir / LOCK_NAME).read_text() if (run_dir / LOCK_NAME).exists()
                 else False, proc=first)  # fmt: skip
        wait_for("a generation notebook to run", lambda: list(run_dir.glob("notebooks/.generation-*.running.ipynb")),
                 proc=first)  # fmt: skip
        second = drive(params, run_dir, "--stages", "..generation", timeout=120)
        assert first.poll() is None, "the first driver ended before the second one was refused: nothing was tested"
    finally:
        first.kill()  # the lock goes with the process, however it ends
        first.communicate(timeout=120)
    assert second.returncode == 2
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: run folder {run_dir} is in use by another driver "
                                                     f"(PID {first.pid}, since "), second.stderr  # fmt: skip
    assert f"python -m madminer_notebooks.driver run --params {params} --run-dir {run_dir}" in errors[0]
    assert "[1/8]" not in second.stderr  # refused before any stage
    again = drive(params, run_dir, "--stages", "setup")
    assert again.returncode == 0 and skipped(again) == {"setup"}, again.stderr


def test_a_folder_held_by_a_notebook_run_by_hand_is_refused_too(tmp_path):
    params = write_params(tmp_path)
    run_dir = tmp_path / "run"
    with run_folder_lock(run_dir, "the 02_generation.ipynb notebook, run by hand"):
        proc = drive(params, run_dir, timeout=120)
    assert proc.returncode == 2
    assert f"is in use by another driver (PID {os.getpid()}, since " in proc.stderr
    assert "02_generation.ipynb notebook, run by hand)" in proc.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]  # nothing was started


def test_an_unwritable_run_folder_is_refused_before_any_stage(tmp_path, tmpfs):
    params = write_params(tmp_path)
    read_only = tmpfs(tmp_path / "ro", "1m", read_only=True)
    for run_dir in (read_only, read_only / "run"):
        proc = drive(params, run_dir, timeout=120)
        assert proc.returncode == 2, proc.stderr
        (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert line == f"error: run folder {run_dir} is not writable (Read-only file system); choose another --run-dir"
        assert "[1/8]" not in proc.stderr
    assert list(read_only.iterdir()) == []


def test_a_full_disk_stops_with_no_space_records_nothing_half_written_and_resumes(tmp_path, tmpfs):
    params = write_params(tmp_path)
    disk = tmpfs(tmp_path / "disk", "1m")  # room for setup and about two of the six event files
    run_dir = disk / "run"
    full = drive(params, run_dir, "--stages", "..generation")
    assert full.returncode == 1, full.stderr
    assert "no space left" in full.stderr.lower(), full.stderr
    assert "run the same command again" in full.stderr
    before = records(run_dir)
    assert "setup" in before and len([n for n in before if n.startswith("generation-")]) < 6
    assert_records_match_files(run_dir)
    assert temporaries(run_dir) == []
    events = {p.name: p.stat().st_mtime_ns for p in (run_dir / "data" / "events").glob("*.lhe.gz")}
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    resumed = drive(params, run_dir, "--stages", "..generation")
    assert resumed.returncode == 0, resumed.stderr
    after = records(run_dir)
    assert len([n for n in after if n.startswith("generation-")]) == 6
    for name, record in before.items():  # nothing that was done was redone
        assert after[name] == record, name
    assert set(before) <= skipped(resumed) and not set(before) & ran(resumed)
    for name, mtime in events.items():
        if f"generation-{name.removesuffix('.lhe.gz')}" in before:
            assert (run_dir / "data" / "events" / name).stat().st_mtime_ns == mtime, name
    assert_records_match_files(run_dir)
    assert temporaries(run_dir) == []


def test_a_driver_killed_mid_stage_leaves_a_folder_the_next_run_resumes(tmp_path):
    params = write_params(tmp_path)
    run_dir = tmp_path / "run"
    first = start(params, run_dir, "--stages", "..analysis")
    try:
        running = wait_for("an analysis notebook to run",
                           lambda: list(run_dir.glob("notebooks/.analysis-*.running.ipynb")), proc=first)  # fmt: skip
        kernels = psutil.Process(first.pid).children(recursive=True)
        assert kernels, "the driver had no kernels running"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    assert first.returncode == -signal.SIGKILL

    # the kernels notice that their parent is gone (ipykernel polls for it) and end
    def alive() -> list:
        living = []
        for kernel in kernels:
            try:
                if kernel.status() != psutil.STATUS_ZOMBIE:
                    living.append(kernel)
            except psutil.NoSuchProcess:
                pass
        return living

    wait_for("the killed driver's kernels to end", lambda: not alive(), 120)
    assert all(p.exists() for p in running) and temporaries(run_dir)  # what the kill left behind
    done = records(run_dir)
    assert "analysis-sm-0" not in done or "analysis-ww-1" not in done
    resumed = drive(params, run_dir, "--stages", "..analysis")
    assert resumed.returncode == 0, resumed.stderr
    assert "temporaries left by an interrupted run" in resumed.stderr
    assert temporaries(run_dir) == []
    after = records(run_dir)
    assert {f"analysis-{b}-{i}" for b in ("sm", "w", "ww") for i in (0, 1)} <= set(after)
    for name, record in done.items():  # what was recorded before the kill was not redone
        assert after[name] == record, name
    assert_records_match_files(run_dir)


def test_fresh_refuses_to_delete_a_folder_that_is_not_a_run_folder(tmp_path):
    """``--fresh`` deletes a run folder's contents; a folder without a manifest (a user's home, a typo) is
    refused with exit 2, before any stage, and keeps every file."""
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    proc = drive(write_params(tmp_path), folder, "--fresh")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"--fresh: {folder} is not empty and holds no manifest.json; refusing to delete it" in proc.stderr
    assert {p.name for p in folder.iterdir()} <= {"chapter1.tex", LOCK_NAME}  # the driver's lock file at most
    assert (folder / "chapter1.tex").read_text() == "precious"
    assert not ran(proc)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("training..evaluation", ["training", "evaluation"]),
        ("..combine", ["setup", "generation", "analysis", "combine"]),
        ("evaluation..", ["evaluation", "plotting"]),
        ("sampling", ["sampling"]),
        (None, ["setup", "generation", "analysis", "combine", "sampling", "training", "evaluation", "plotting"]),
        ("trainig", "--stages 'trainig': unknown stage 'trainig' (stages: setup, generation, analysis, combine,"),
        ("evaluation..training", "--stages 'evaluation..training': evaluation comes after training"),
        ("setup..plots", "--stages 'setup..plots': unknown stage 'plots'"),
    ],
)
def test_stage_ranges_parse_or_name_what_is_wrong(spec, expected):
    from madminer_notebooks.driver.errors import UsageError
    from madminer_notebooks.driver.runner import parse_stages

    if isinstance(expected, list):
        assert parse_stages(spec) == expected
        return
    with pytest.raises(UsageError) as info:
        parse_stages(spec)
    assert str(info.value).startswith(expected)


def test_a_corrupt_manifest_is_one_error_line_that_says_what_to_do(tmp_path):
    params = write_params(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    manifest = run_dir / "manifest.json"
    manifest.write_text('{"run_id": "abc", "executions": {"setup": {"notebook": ')  # cut short
    proc = drive(params, run_dir, "--stages", "setup")
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert errors[0].startswith(f"error: {manifest} is not a readable run manifest (")
    assert errors[0].endswith("delete it to redo every stage, or run again with --fresh to empty the run folder")
    manifest.write_text("[]")  # valid JSON, not a manifest
    proc = drive(params, run_dir, "--stages", "setup")
    assert proc.returncode == 2 and f"error: {manifest} is not a run manifest (no 'executions' mapping)" in proc.stderr
    proc = drive(params, run_dir, "--stages", "setup", "--fresh")  # what the error line says to do
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ran(proc) == {"setup"} and set(records(run_dir)) == {"setup"}
