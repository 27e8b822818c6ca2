"""The driver's kernel pool: kernels that have imported MadMiner and torch with a clean namespace, each
execution's share of the cores as the number running changes, and no kernel for an execution not expected."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_client import BlockingKernelClient

from madminer_notebooks import threads
from madminer_notebooks.driver.kernels import KernelPool

ROOT = Path(__file__).resolve().parents[1]

PROBE = """import json, os, sys
from madminer_notebooks import threads
IPYTHON = ("In", "Out", "exit", "quit", "get_ipython", "open")
print(json.dumps({
    "names": sorted(k for k in dir() if not k.startswith("_") and k not in IPYTHON + ("IPYTHON",)),
    "imported": [m for m in ("torch", "madminer", "matplotlib.pyplot") if m in sys.modules],
    "share": threads.follow(),
    "torch_threads": sys.modules["torch"].get_num_threads(),
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
    pool = KernelPool(ROOT / "notebooks", size=2, expected=2)
    try:
        first = pool.take()
        second = pool.take()
        seen = _probe(first)
        # the user's namespace holds only what the probe itself imported: the warm-up names nothing
        assert seen["names"] == ["json", "os", "sys", "threads"]
        assert seen["imported"] == ["torch", "madminer", "matplotlib.pyplot"]
        assert seen["share"] == 2 and seen["torch_threads"] == 2  # two running: 4 // 2 each
        pool.release(second)
        seen = _probe(first)
        assert seen["share"] == 4 and seen["torch_threads"] == 4  # alone now: all of the cap
        assert not pool._ready and pool._left == 0  # two expected, two served: no spare kernel started
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

    pool = KernelPool(ROOT / "notebooks", size=1, expected=1)
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
    pool = KernelPool(ROOT / "notebooks", size=2, expected=2)
    futures = list(pool._ready)
    pool.close()  # at once, while both import (seconds): they give up and are stopped
    assert all(f.done() for f in futures)
    assert not _kernel_processes()
