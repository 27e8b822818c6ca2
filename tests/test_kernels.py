"""The driver's kernel pool: kernels that have imported MadMiner and torch with a clean namespace, each
execution's share of the cores as the number running changes, no kernel for an execution not planned, and a
light warm-up for the stages that use neither MadMiner nor torch."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_client import BlockingKernelClient

from madminer_notebooks import threads
from madminer_notebooks.driver.kernels import LIGHT_STAGES, KernelPool

ROOT = Path(__file__).resolve().parents[1]

PROBE = """import json, os, sys
from madminer_notebooks import threads
IPYTHON = ("In", "Out", "exit", "quit", "get_ipython", "open")
print(json.dumps({
    "names": sorted(k for k in dir() if not k.startswith("_") and k not in IPYTHON + ("IPYTHON",)),
    "imported": [m for m in ("torch", "madminer", "matplotlib.pyplot", "torch._dynamo") if m in sys.modules],
    "share": threads.follow(),
    "torch_threads": sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None,
}))
"""


def _probe(kernel) -> dict:
    client = BlockingKernelClient(connection_file=kernel.manager.connection_file)
    client.load_connection_file()
    client.start_channels()
    out: list[str] = []
    try:
        client.wait_for_ready(timeout=300)
        client.execute_interactive(PROBE, timeout=300, output_hook=lambda m: out.append(m["content"].get("text", "")))
    finally:
        client.stop_channels()
    return json.loads("".join(out))


def test_warm_kernels_share_the_cores_of_the_executions_running_now(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the cap: what all executions together may use
    pool = KernelPool(ROOT / "notebooks", size=2, plan=["training", "training"])
    try:
        first = pool.take()
        second = pool.take()
        seen = _probe(first)
        # the user's namespace holds only what the probe itself imported: the warm-up names nothing
        assert seen["names"] == ["json", "os", "sys", "threads"]
        # a training kernel has also imported what torch's first optimiser would import in the notebook
        assert seen["imported"] == ["torch", "madminer", "matplotlib.pyplot", "torch._dynamo"]
        assert seen["share"] == 2 and seen["torch_threads"] == 2  # two running: 4 // 2 each
        pool.release(second)
        seen = _probe(first)
        assert seen["share"] == 4 and seen["torch_threads"] == 4  # alone now: all of the cap
        assert not pool._ready and pool._plan == []  # two planned, two served: no spare kernel started
        pool.release(first)
    finally:
        pool.close()
    assert threads.share() is None  # outside a driver's kernel there is no share file


def _kernel_processes() -> list:
    import psutil

    return [p for p in psutil.Process().children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]


def test_a_kernel_killed_while_it_imports_fails_its_start_instead_of_waiting_for_a_reply():
    """Ctrl-C stops every child of the driver, spare kernels still importing included; the start must notice
    the death (before, it waited the 600 s warm-up timeout for a reply, and so did the interrupted driver:
    the CI failure of test_chain's two Ctrl-C tests)."""
    from conftest import wait_for

    pool = KernelPool(ROOT / "notebooks", size=1, plan=["evaluation"])
    try:
        (future,) = pool._ready
        (kernel,) = wait_for("the spare kernel's process", _kernel_processes, 120)
        kernel.kill()
        error = future.exception(timeout=120)  # the warm-up imports torch and MadMiner: seconds, not 120
        assert isinstance(error, RuntimeError) and "died while it imported" in str(error)
    finally:
        pool.close()
    assert not _kernel_processes()


def test_closing_the_pool_abandons_the_kernels_still_starting():
    pool = KernelPool(ROOT / "notebooks", size=2, plan=["sampling", "sampling"])
    futures = list(pool._ready)
    pool.close()  # at once, while both import (seconds): they give up and are stopped
    assert all(f.done() for f in futures)
    assert not _kernel_processes()


def test_generation_kernels_import_neither_torch_nor_madminer():
    """A spare kernel warms up beside the running executions: for generation, whose notebook uses neither,
    importing them only took cores from the generator."""
    pool = KernelPool(ROOT / "notebooks", size=1, plan=["generation", "analysis"])
    try:
        light = pool.take()
        assert _probe(light)["imported"] == ["matplotlib.pyplot"]
        pool.release(light)
        full = pool.take()  # the plan's second execution: an analysis, which imports MadMiner
        assert _probe(full)["imported"] == ["torch", "madminer", "matplotlib.pyplot"]
        pool.release(full)
    finally:
        pool.close()


def test_the_light_stages_notebooks_import_neither_torch_nor_madminer():
    """LIGHT_STAGES must follow the notebooks: a light stage whose notebook imported MadMiner would pay the
    imports inside the notebook again."""
    from madminer_notebooks.chain import NOTEBOOKS

    for stage in LIGHT_STAGES:
        notebook = json.loads((ROOT / "notebooks" / NOTEBOOKS[stage]).read_text())
        code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
        imports = [line for line in code.splitlines() if line.startswith(("import ", "from "))]
        heavy = [line for line in imports if "madminer " in line or "madminer." in line or "torch" in line]
        assert imports and not heavy, (stage, heavy)
        assert "madminer=False" in code, f"{stage}: its begin() would import MadMiner"
