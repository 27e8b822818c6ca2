"""The tutorial as a person uses it: JupyterLab started with the README's command (``drivers/lab``), each
stage notebook opened in a real browser (Debian's chromium, driven by Playwright) and run with its default
parameters, in order; then ``drivers/run`` on the same run folder, which must find nothing to redo.

The notebooks' default parameter file (``params/quick.yaml``) is the suite's tiny set in the copy JupyterLab
serves, so the whole chain runs once in about two minutes; ``pytest -m "not browser"`` leaves it out.
Screenshots of every notebook land in ``test-artifacts/jupyterlab/``.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import free_port, serving
from tiny import write_params

from madminer_notebooks.chain import NOTEBOOKS, STAGES

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "jupyterlab"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: The flags this machine's closed network needs (no background connections) and a root user needs.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip
#: Images each notebook shows at least, with its default parameters.
IMAGES = {"setup": 1, "generation": 1, "analysis": 1, "combine": 1, "sampling": 1, "training": 1, "evaluation": 2,
          "plotting": 4}  # fmt: skip
#: JupyterLab settings for a test: every cell rendered (no virtual scrolling), no news or update pop-ups.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}
KERNEL_DISPLAY_NAME = "Python 3 (madminer-notebooks)"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab from ``drivers/lab`` on 127.0.0.1 with a token, serving a copy of the tutorial."""
    if not Path(CHROMIUM).is_file():
        pytest.fail("Debian's chromium is not installed: drivers/test installs it (drivers/ensure-browser)")
    home = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", home / "notebooks")
    shutil.copytree(ROOT / "params", home / "params")
    # the notebooks' default parameter file at the suite's tiny sizes, one event file per benchmark: the same
    # promise, a fraction of the time
    write_params(home / "params", {"generation.files_per_benchmark": 1}, name="quick.yaml")
    for name, value in SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    command = [str(ROOT / "drivers" / "lab"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--notebook-dir={home / 'notebooks'}"]  # fmt: skip
    env = {"JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_CONFIG_DIR": str(home / "config")}  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serving(command, f"{url}/api/status?token={token}", home / "lab.log", env=env):
        yield url, token, home


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


#: The notebook on show (JupyterLab keeps other tabs in the DOM, hidden).
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _prompts(page) -> list[str]:
    return page.eval_on_selector_all(f"{PANEL} .jp-CodeCell .jp-InputArea-prompt", "els => els.map(e => e.textContent)")


def _run_all(page, name: str, timeout: float) -> None:
    """Run > Run All Cells, then wait until no cell is queued or running."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    deadline = time.monotonic() + timeout
    started = False
    while time.monotonic() < deadline:
        prompts = _prompts(page)
        busy = any("*" in p for p in prompts)
        started = started or busy or any(re.search(r"\d", p) for p in prompts)
        if started and not busy:
            return
        time.sleep(1.0)
    raise AssertionError(f"{name}: still running after {timeout:.0f} s (prompts {prompts})")


def _save(page, path: Path, timeout: float = 120) -> nbformat.NotebookNode:
    """Save with Ctrl+S and read back what JupyterLab wrote."""
    before = path.stat().st_mtime_ns
    page.locator(f"{PANEL} .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + timeout
    while path.stat().st_mtime_ns == before:
        assert time.monotonic() < deadline, f"{path.name} was not saved"
        time.sleep(0.5)
    time.sleep(1.0)  # the write is atomic, but let a second save (autosave) settle
    return nbformat.read(path, as_version=4)


def _shut_down_kernels(url: str, token: str) -> None:
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=30) as r:
        sessions = json.load(r)
    for session in sessions:
        request = urllib.request.Request(f"{url}/api/sessions/{session['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=60).close()


def test_every_notebook_runs_in_jupyterlab_and_the_driver_then_has_nothing_to_do(lab, browser):
    url, token, home = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(f"{url}/api/kernelspecs?token={token}", timeout=30) as r:
        specs = json.load(r)
    project_python = str(ROOT / ".venv" / "bin" / "python")
    assert specs["kernelspecs"]["python3"]["spec"]["argv"][0] == project_python  # the project's environment
    assert specs["kernelspecs"]["python3"]["spec"]["display_name"] == KERNEL_DISPLAY_NAME

    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    problems = []
    for stage in STAGES:
        name = NOTEBOOKS[stage]
        page.goto(f"{url}/lab/tree/{name}?reset&token={token}")  # reset: only this notebook open
        page.wait_for_selector(f"{PANEL} .jp-CodeCell", timeout=120_000)
        page.wait_for_function(
            "name => [...document.querySelectorAll('.jp-Toolbar-kernelName')].some(e => e.textContent.includes(name))",
            arg=KERNEL_DISPLAY_NAME, timeout=120_000,
        )  # fmt: skip
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=180_000)
        _run_all(page, name, timeout=1500)
        page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}-top.png"))
        images = page.locator(f"{PANEL} .jp-OutputArea-output img")
        shown = images.count()
        if shown:
            images.last.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}-last-plot.png"))
        saved = _save(page, home / "notebooks" / name)

        code = [c for c in saved.cells if c.cell_type == "code"]
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        stderr = ["".join(o.text) for c in code for o in c.outputs if o.get("name") == "stderr"]
        stored = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
        if errors:
            problems.append(f"{name}: {errors[0].ename}: {errors[0].evalue}")
        if stderr:
            problems.append(f"{name}: output on stderr (a red box): {stderr[0][:300]!r}")
        if any(c.execution_count is None for c in code):
            problems.append(f"{name}: not every cell ran")
        if stored < IMAGES[stage] or shown < IMAGES[stage]:
            problems.append(f"{name}: {shown} images displayed, {stored} saved, expected {IMAGES[stage]}")
        assert saved.metadata.kernelspec.name == "python3"
        assert saved.metadata.kernelspec.display_name == KERNEL_DISPLAY_NAME
        assert not errors, "\n".join(problems)
        _shut_down_kernels(url, token)  # as a person closing the notebook would; frees its memory
        page.close()
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
    assert not problems, "\n".join(problems)

    # The batch driver on the run folder of the tutorial: everything was recorded, nothing is redone.
    run_dir = home / "runs" / "interactive"
    proc = subprocess.run(
        [sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(home / "params" / "quick.yaml"),
         "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not re.findall(r"^\S+\s+(\S+)\s+done in", proc.stderr, re.M), proc.stderr  # no execution ran
    skipped = re.findall(r"^\S+\s+(\S+)\s+up to date, skipped", proc.stderr, re.M)
    assert {"setup", "combine", "sampling", "plotting", "training-sally", "evaluation-histo"} <= set(skipped)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["limits"]) == {"rate", "histo", "sally", "alice", "alices"}
    # git sees no change in a notebook that was run and saved (the clean filter of drivers/ensure-env)
    for name in NOTEBOOKS.values():
        stripped = subprocess.run(
            [sys.executable, "-m", "nbstripout", "--keep-id", "--extra-keys", "metadata.language_info.version", "-t"],
            input=(home / "notebooks" / name).read_text(), capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert stripped == (ROOT / "notebooks" / name).read_text(), name
