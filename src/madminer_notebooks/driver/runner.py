"""The driver's orchestration: the chain run in order (``drivers/run``), one stage as a workflow step runs it
(``drivers/stage``), and the stage runner that both of them, the scan points and the notebooks' last cell
(:mod:`.interactive`) share, so that a notebook is executed, skipped and recorded the same way on every path.

Each execution of a stage is a papermill run of the stage's notebook (:mod:`.execute`) in a kernel from a
pool (:mod:`.kernels`), several at once; an execution whose inputs, parameters and notebook are unchanged
since it was recorded in the run's manifest is skipped (:mod:`.manifest`).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from .. import tracking
from ..chain import STAGES, executions, script_only
from ..params import load_params
from ..paths import RunPaths
from .errors import UsageError
from .execute import StageFailed, execute, notebook_dir, up_to_date
from .interrupt import POLL_SECONDS, STOP, stop_children
from .kernels import KernelPool
from .lock import LOCK_NAME, remove_stale, run_folder_lock
from .manifest import Manifest
from .preflight import preflight
from .report import update_summary_and_report
from .scan import run_scan
from .step import MissingInput, link_inputs, publish

log = logging.getLogger("madminer_notebooks.driver")


def parse_stages(spec: str | None) -> list[str]:
    """'generation..training', 'analysis', '..combine', 'sampling..' -> list of stage names."""
    if not spec:
        return list(STAGES)
    first, sep, last = spec.partition("..")
    if not sep:
        last = first
    first = first or STAGES[0]
    last = last or STAGES[-1]
    for name in (first, last):
        if name not in STAGES:
            raise UsageError(f"--stages {spec!r}: unknown stage {name!r} (stages: {', '.join(STAGES)})")
    i, j = STAGES.index(first), STAGES.index(last)
    if i > j:
        raise UsageError(f"--stages {spec!r}: {first} comes after {last}")
    return list(STAGES[i : j + 1])


def _fresh(paths: RunPaths) -> None:
    root = paths.root
    if not root.exists():
        return
    contents = [p for p in root.iterdir() if p.name != LOCK_NAME]  # the lock stays: this driver holds it
    if contents and not paths.manifest.exists():
        raise UsageError(f"--fresh: {root} is not empty and holds no manifest.json; refusing to delete it")
    for path in contents:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _select(params: dict, stage: str, paths: RunPaths, key: str | None) -> list:
    """The executions of ``stage`` (only the one named ``key`` when given)."""
    todo = executions(params, stage, paths.root)
    if key is not None:
        todo = [e for e in todo if e.key == key]
        if not todo:
            keys = ", ".join(e.key for e in executions(params, stage, paths.root)) or "(none: it runs once)"
            raise UsageError(f"stage {stage} has no execution {key!r} (keys: {keys})")
    return todo


def run_stage(stage: str, params: dict, params_file: Path, paths: RunPaths, manifest: Manifest, parallel: int,
               kernels: KernelPool, key: str | None = None, force: bool = False) -> float:  # fmt: skip
    todo = _select(params, stage, paths, key)
    start = time.perf_counter()
    failures: list[str] = []
    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(todo))))
    futures = {pool.submit(execute, e, params, params_file, paths, manifest, kernels, force): e for e in todo}
    try:
        pending = set(futures)
        while pending:  # in slices: a SIGINT handler runs only when the main thread wakes (see interrupt.py)
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_EXCEPTION)
            for fut in done:
                if fut.cancelled():  # not started because another execution failed
                    continue
                ex = futures[fut]
                err = fut.exception()
                if err is None:
                    out = fut.result()
                    log.info(
                        "  %-22s %s", ex.name, "up to date, skipped" if out.skipped else f"done in {out.seconds:.1f} s"
                    )
                elif isinstance(err, StageFailed):
                    failures.append(str(err))
                    for other in pending:  # do not start more work; running ones finish
                        other.cancel()
                else:
                    raise err
    except KeyboardInterrupt:
        STOP.set()  # also when the interrupt came another way than our handler (e.g. inside a Jupyter kernel)
        for fut in futures:
            fut.cancel()
        stop_children()  # running notebooks end with a dead kernel; STOP keeps them from being recorded
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        raise StageFailed("\n".join(failures))
    return time.perf_counter() - start


def prepare_tracking(params: dict, paths: RunPaths, manifest: Manifest, stages: list[str]) -> None:
    """Name the chain run for the tracker, and check the store and create its experiments before any
    notebook starts (so parallel executions never race to create them, and a dead server fails early)."""
    if not tracking.config(params, paths) or not set(stages) & set(tracking.FAMILIES):
        return
    if tracking.is_unset(os.environ.get(tracking.RUN_ID_VARIABLE)):  # a workflow step gets it from its workflow
        os.environ[tracking.RUN_ID_VARIABLE] = manifest.run_id  # inherited by the kernels started after this
    tracking.prepare(params, paths)  # an unreachable store: exit 2 (errors.exit_status)


def _pending(params: dict, paths: RunPaths, manifest: Manifest, stage: str) -> bool:
    """Whether any execution of ``stage`` has work to do."""
    return not all(up_to_date(ex, params, paths, manifest) for ex in executions(params, stage, paths.root))


def run_chain(params_file: Path, run_dir: Path, stages_spec: str | None = None, fresh: bool = False,
              parallel: int | None = None) -> int:  # fmt: skip
    """``drivers/run``: the stages ``stages_spec`` (all by default) in order, each execution skipped when up to
    date; the scan points, the summary and the report after the last stage."""
    params_file = Path(params_file).resolve()
    params = load_params(params_file)
    stages = parse_stages(stages_spec)
    if script_only(params) and "generation" in stages and stages[-1] != "generation":
        log.info("generation.madgraph.script_only: preparing the MadGraph scripts; the chain stops after generation")
        stages = stages[: stages.index("generation") + 1]
    paths = RunPaths(run_dir)
    pending = fresh or _pending(params, paths, Manifest(paths.manifest), "analysis")
    preflight(params, params_file, stages, pending)  # before anything is deleted or created
    with run_folder_lock(paths.root):  # refuses a second driver, and an unwritable folder, before any stage
        return _run_chain_locked(params, params_file, paths, stages, fresh, parallel)


def _run_chain_locked(params: dict, params_file: Path, paths: RunPaths, stages: list[str], fresh: bool,
                      parallel: int | None) -> int:  # fmt: skip
    start = time.perf_counter()
    if fresh:
        _fresh(paths)
    remove_stale(paths.root)
    paths.make_folders()
    manifest = Manifest(paths.manifest)
    prepare_tracking(params, paths, manifest, stages)
    parallel = parallel or params["run"]["parallel"]
    log.info("run folder %s, parameters %s, stages %s..%s", paths.root, params_file, stages[0], stages[-1])
    # a resumed run usually has nothing to do: then it starts no kernel at all
    busy = any(_pending(params, paths, manifest, stage) for stage in stages)
    plan = [stage for stage in stages for _ in executions(params, stage, paths.root)]
    kernels = KernelPool(notebook_dir(), parallel, prestart=busy, plan=plan)
    try:
        for stage in stages:
            n = len(executions(params, stage, paths.root))
            log.info("[%d/%d] %s (%d execution%s)", STAGES.index(stage) + 1, len(STAGES), stage, n, "s" * (n != 1))
            seconds = run_stage(stage, params, params_file, paths, manifest, parallel, kernels)
            log.info("      %s finished in %.1f s", stage, seconds)
    finally:
        kernels.close()
    if stages[-1] == STAGES[-1] and params["scan"]:
        run_scan(params, paths, functools.partial(_run_scan_stage, parallel=parallel))
    if stages[-1] == STAGES[-1]:
        index = update_summary_and_report(params, params_file, paths, manifest.records, time.perf_counter() - start)
        log.info("summary: %s", paths.summary)
        log.info("report:  %s", index)
    log.info("done in %.1f s", time.perf_counter() - start)
    return 0


def _run_scan_stage(stage: str, params: dict, params_file: Path, paths: RunPaths, parallel: int) -> float:
    """One stage of one scan point, with kernels started now (they inherit the point's tracking tag)."""
    kernels = KernelPool(notebook_dir(), parallel, plan=[stage] * len(executions(params, stage, paths.root)))
    try:
        return run_stage(stage, params, params_file, paths, Manifest(paths.manifest), parallel, kernels)
    finally:
        kernels.close()


def run_step(params_file: Path, run_dir: Path, stage: str, key: str | None = None, force: bool = False,
             parallel: int | None = None, inputs_from: list[Path] | None = None,
             publish_to: str | None = None) -> int:  # fmt: skip
    """``drivers/stage``, what a workflow step runs: the executions of one stage (only ``key``'s when given),
    with its inputs linked from the upstream steps' folders ``inputs_from`` and its outputs listed for
    Yadage in ``publish_to``. The last stage also writes the summary and the report."""
    params_file = Path(params_file).resolve()
    params = load_params(params_file)
    if stage not in STAGES:
        raise UsageError(f"--stage {stage!r}: unknown stage (stages: {', '.join(STAGES)})")
    key = key or None  # a workflow step of a stage that runs once passes --key=
    paths = RunPaths(run_dir)
    todo = _select(params, stage, paths, key)
    with run_folder_lock(paths.root):
        remove_stale(paths.root)
        paths.make_folders()
        return _run_step_locked(params, params_file, paths, stage, todo, key, force, parallel, inputs_from,
                                publish_to)  # fmt: skip


def _run_step_locked(params: dict, params_file: Path, paths: RunPaths, stage: str, todo: list, key: str | None,
                     force: bool, parallel: int | None, inputs_from: list[Path] | None,
                     publish_to: str | None) -> int:  # fmt: skip
    if inputs_from is not None:
        try:
            link_inputs(todo, paths, [Path(d) for d in inputs_from])
        except MissingInput as err:
            raise UsageError(f"stage {stage}{f' ({key})' if key else ''}: {err}") from None
    manifest = Manifest(paths.manifest)
    prepare_tracking(params, paths, manifest, [stage])
    parallel = parallel or 1
    wall = time.perf_counter()
    # a resumed workflow step usually has nothing to do: then it starts no kernel at all
    busy = force or not all(up_to_date(ex, params, paths, manifest) for ex in todo)
    preflight(params, params_file, [stage], busy)
    kernels = KernelPool(notebook_dir(), parallel, prestart=busy, plan=[stage] * len(todo))
    try:
        seconds = run_stage(stage, params, params_file, paths, manifest, parallel, kernels, key, force)
    finally:
        kernels.close()
    log.info("%s finished in %.1f s", stage, seconds)
    if stage == STAGES[-1]:
        update_summary_and_report(params, params_file, paths, manifest.records, time.perf_counter() - wall)
        log.info("summary: %s", paths.summary)
    if publish_to:
        log.info("published: %s", publish(params, stage, todo, paths, publish_to))
    return 0
