"""Running the generator: grid adaptation, integration, parallel unweighted generation, file assembly.

Phases
  1. survey     (parent)      adapt the VEGAS map on the sampling benchmark's weights;
  2. integrate  (J jobs)      weighted points give the cross section, its error and the maximum weight
                              used for unweighting (truncating at most ``truncation`` of the cross section,
                              as MadGraph does);
  3. generate   (J jobs)      hit-or-miss unweighting; each job streams its events into its own gzip
                              member, so memory does not grow with the number of events;
  4. assemble   (parent)      header member + job members + footer member, written under a temporary
                              name and renamed: a file with the final name is always complete.

Random streams come from ``numpy.random.SeedSequence(seed)``: one for the survey and two per job, so a
given (seed, jobs) always produces the same bytes.
"""

from __future__ import annotations

import gzip
import logging
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import __version__
from ..lhe_file import EventFileRecord
from ..notebook_output import progress_stream
from .benchmarks import Benchmark, Setup, load_setup
from .lhe import FOOTER, EventFormatter, RunInfo, header
from .pdf import LHAGrid, find_pdf_grid
from .phase_space import N_DIM, GenerationCuts
from .process import ScaleChoice, VBFHiggsProcess, alpha_s_one_loop
from .vegas_map import VegasMap

log = logging.getLogger(__name__)


def share(total: int, parts: int, index: int) -> int:
    """Part ``index`` of ``total`` split as evenly as possible into ``parts`` (the first ones get the rest)."""
    return total // parts + (index < total % parts)


class GenerationError(RuntimeError):
    """A request that cannot be carried out (bad input); raised before any work starts."""


@dataclass(frozen=True)
class GenerationRequest:
    setup: Path
    benchmark: str
    n_events: int
    seed: int
    output: Path
    scale: str = "fixed:125"
    jobs: int = 1
    cuts: GenerationCuts = field(default_factory=GenerationCuts)
    #: Largest fraction of the cross section that unweighting may truncate (events with w > w_max).
    truncation: float = 1e-3
    survey_iterations: int = 10
    survey_points: int = 20_000
    grid_bins: int = 128
    batch_size: int = 20_000
    #: Weighted points for the cross section (0: automatic, between 2e5 and 2e6 by the event count).
    integration_points: int = 0


@dataclass(frozen=True)
class GenerationResult(EventFileRecord):
    """A generated file's record, with how it was generated and how fast."""

    seconds: float
    output: str
    seed: int
    jobs: int
    scale: str
    unweighting_efficiency: float
    truncated_fraction: float
    trials: int
    events_per_second: float


# ----------------------------------------------------------------------------------------------------
# Work shared with worker processes (set before forking, or in the worker initialiser).


@dataclass
class _Context:
    process: VBFHiggsProcess
    grid: VegasMap
    setup: Setup
    sampling: Benchmark
    batch_size: int
    counter: object = None  # multiprocessing.Value with the number of events written so far


_CTX: _Context | None = None
#: Progress bar of a job that runs in the parent process (jobs = 1); workers report through the counter.
_INLINE_BAR: tqdm | None = None


def _init_worker(ctx: _Context) -> None:
    global _CTX
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and cleans up
    _CTX = ctx


def _sample(ctx: _Context, rng: np.random.Generator, n: int):
    """n points from the adapted map: (batch, sampling weights [pb])."""
    y = rng.random((n, N_DIM))
    flat = rng.random((n, 3))
    x, jac, _ = ctx.grid.map(y)
    batch = ctx.process.evaluate(x, flat)
    batch.base *= jac
    return batch, batch.weights(ctx.sampling.cwl2, ctx.sampling.cpwl2)


def _integrate_job(args: tuple[np.random.SeedSequence, int]) -> np.ndarray:
    seq, n_points = args
    ctx = _CTX
    rng = np.random.default_rng(seq)
    out = []
    for start in range(0, n_points, ctx.batch_size):
        _, w = _sample(ctx, rng, min(ctx.batch_size, n_points - start))
        out.append(w)
    return np.concatenate(out)


def _generate_job(args: tuple[np.random.SeedSequence, int, float, float, str]) -> dict:
    """Unweight until n_events are accepted; write them as one gzip member to ``path``."""
    seq, n_events, w_max, cross_section, path = args
    ctx = _CTX
    rng = np.random.default_rng(seq)
    others = [b for b in ctx.setup.benchmarks if b.name != ctx.sampling.name]
    formatter = EventFormatter([b.name for b in others])
    written = trials = 0
    sum_w = excess = 0.0
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=3) as gz:
        while written < n_events:
            batch, w = _sample(ctx, rng, ctx.batch_size)
            accept = rng.random(len(w)) * w_max < w
            trials += len(w)
            sum_w += float(w.sum())
            excess += float(np.maximum(w - w_max, 0.0).sum())
            idx = np.flatnonzero(accept)[: n_events - written]
            if idx.size == 0:
                continue
            w_s = w[idx]
            if others:
                accepted, base = batch.parts.select(idx), batch.base[idx]
                ratios = np.column_stack([base * accepted.squared(b.cwl2, b.cpwl2) / w_s for b in others])
            else:
                ratios = np.empty((idx.size, 0))
            kin = batch.kin
            momenta = [kin.p1[idx], kin.p2[idx], kin.p3[idx], kin.p4[idx], kin.ph[idx], kin.a1[idx], kin.a2[idx]]
            zeros = np.zeros(idx.size)
            masses = [zeros, zeros, zeros, zeros, kin.mass[idx], zeros, zeros]
            mu = batch.scale[idx]
            text = formatter.format(
                np.full(idx.size, cross_section), mu, alpha_s_one_loop(mu), momenta, masses, cross_section * ratios
            )
            gz.write(text.encode())
            written += idx.size
            if ctx.counter is not None:
                with ctx.counter.get_lock():
                    ctx.counter.value += idx.size
            if _INLINE_BAR is not None:
                _INLINE_BAR.update(idx.size)
    return {"trials": trials, "sum_w": sum_w, "excess": excess, "events": written}


# ----------------------------------------------------------------------------------------------------


def _validate(req: GenerationRequest) -> tuple[Setup, Benchmark, ScaleChoice, Path]:
    """Every check that can fail, before any work starts."""
    if req.n_events <= 0:
        raise GenerationError(f"--events must be a positive number of events, got {req.n_events}")
    if req.jobs <= 0:
        raise GenerationError(f"--jobs must be at least 1, got {req.jobs}")
    if req.seed < 0:
        raise GenerationError(f"--seed must be a non-negative integer, got {req.seed}")
    scale = ScaleChoice.parse(req.scale)
    setup = load_setup(req.setup)
    sampling = setup.benchmark(req.benchmark)
    pdf_path = find_pdf_grid()
    out = Path(req.output)
    if not (out.name.endswith(".lhe.gz")):
        raise GenerationError(f"output {out} must end in .lhe.gz")
    if not out.parent.is_dir():
        raise GenerationError(f"output folder {out.parent} does not exist")
    if out.is_dir():
        raise GenerationError(f"output {out} is a folder")
    try:  # the real test of writability (permission bits do not tell for root or read-only mounts)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as err:
        raise GenerationError(f"output folder {out.parent} is not writable ({err.strerror})") from None
    return setup, sampling, scale, pdf_path


def _adapt_grid(process: VBFHiggsProcess, sampling: Benchmark, req: GenerationRequest, seq) -> VegasMap:
    grid = VegasMap(N_DIM, req.grid_bins)
    rng = np.random.default_rng(seq)
    for _ in range(req.survey_iterations):
        y = rng.random((req.survey_points, N_DIM))
        x, jac, idx = grid.map(y)
        w = process.evaluate(x, rng.random((req.survey_points, 3))).weights(sampling.cwl2, sampling.cpwl2) * jac
        grid.adapt(idx, w)
    return grid


def max_weight_for_truncation(weights: np.ndarray, truncation: float) -> float:
    """Smallest w_max with sum(max(w - w_max, 0)) <= truncation * sum(w)."""
    w = np.sort(weights[weights > 0])[::-1]
    if w.size == 0:
        raise GenerationError("no phase-space point passed the generation cuts; check the cuts")
    cum = np.cumsum(w)
    # Excess above w[k] of the k+1 largest weights; non-decreasing in k.
    excess = cum - np.arange(1, w.size + 1) * w
    k = int(np.searchsorted(excess, truncation * cum[-1], side="right")) - 1
    return float(w[max(k, 0)])


def _run_jobs(func, tasks: list, ctx: _Context, jobs: int, bar: tqdm | None) -> list:
    global _CTX, _INLINE_BAR
    if jobs == 1:
        _CTX, _INLINE_BAR = ctx, bar
        try:
            return [func(t) for t in tasks]
        finally:
            _INLINE_BAR = None
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mpc = mp.get_context(method)
    pool = mpc.Pool(jobs, initializer=_init_worker, initargs=(ctx,))
    try:
        result = pool.map_async(func, tasks, chunksize=1)
        while not result.ready():
            result.wait(0.2)
            if bar is not None and ctx.counter is not None:
                bar.n = ctx.counter.value
                bar.refresh()
        values = result.get()
        pool.close()
        return values
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def generate(req: GenerationRequest, progress: bool = True) -> GenerationResult:
    """Generate ``req.n_events`` unweighted events into ``req.output``; see the module docstring."""
    start = time.perf_counter()
    setup, sampling, scale, pdf_path = _validate(req)
    out = Path(req.output)
    process = VBFHiggsProcess(LHAGrid(pdf_path), scale, req.cuts)
    seq_survey, seq_jobs = np.random.SeedSequence(req.seed).spawn(2)
    job_seqs = [s.spawn(2) for s in seq_jobs.spawn(req.jobs)]

    log.info("adapting the phase-space grid on benchmark %s", sampling.name)
    grid = _adapt_grid(process, sampling, req, seq_survey)
    counter = mp.get_context("fork").Value("q", 0) if req.jobs > 1 and "fork" in mp.get_all_start_methods() else None
    ctx = _Context(process, grid, setup, sampling, req.batch_size, counter)

    n_int = req.integration_points or min(max(200_000, req.n_events), 2_000_000)
    shares = [share(n_int, req.jobs, j) for j in range(req.jobs)]
    weights = np.concatenate(
        _run_jobs(_integrate_job, [(js[0], n) for js, n in zip(job_seqs, shares, strict=True)], ctx, req.jobs, None)
    )
    cross_section = float(weights.mean())
    if not cross_section > 0:
        raise GenerationError("the cross section is zero: no phase-space point passed the generation cuts")
    error = float(weights.std(ddof=1) / np.sqrt(weights.size))
    w_max = max_weight_for_truncation(weights, req.truncation)
    log.info(
        "cross section %.6e +- %.2e pb from %d points; w_max / <w> = %.1f",
        cross_section,
        error,
        weights.size,
        w_max / cross_section,
    )
    del weights

    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))  # atomic.is_temporary
    try:
        parts = [tmp_dir / f"part-{j:04d}.gz" for j in range(req.jobs)]
        counts = [share(req.n_events, req.jobs, j) for j in range(req.jobs)]
        tasks = [(js[1], n, w_max, cross_section, str(p)) for js, n, p in zip(job_seqs, counts, parts, strict=True)]
        with tqdm(
            total=req.n_events,
            unit="ev",
            file=progress_stream(),
            disable=not progress,
            desc=f"generating {sampling.name}",
        ) as bar:
            stats = _run_jobs(_generate_job, tasks, ctx, req.jobs, bar)
            bar.n = req.n_events
            bar.refresh()
        trials = sum(s["trials"] for s in stats)
        truncated = sum(s["excess"] for s in stats) / max(sum(s["sum_w"] for s in stats), 1e-300)
        info = RunInfo(
            setup=setup,
            sampling=sampling,
            n_events=req.n_events,
            seed=req.seed,
            jobs=req.jobs,
            scale_spec=scale.spec,
            cuts=req.cuts,
            cross_section_pb=cross_section,
            cross_section_error_pb=error,
            truncated_fraction=truncated,
            unweighting_efficiency=req.n_events / trials,
            generator_version=__version__,
        )
        final = tmp_dir / "events.lhe.gz"
        with open(final, "wb") as f:
            _write_member(f, header(info))
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 20)
            _write_member(f, FOOTER)
        os.replace(final, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    # MadMiner unzips X.lhe.gz to X.lhe and silently reuses an existing X.lhe: never leave a stale one.
    stale = out.with_suffix("")
    if stale.exists():
        log.warning("removing %s, a stale unzipped copy of an earlier %s", stale, out.name)
        stale.unlink()

    seconds = time.perf_counter() - start
    return GenerationResult(
        benchmark=sampling.name,
        events=req.n_events,
        cross_section_pb=cross_section,
        cross_section_error_pb=error,
        seconds=round(seconds, 3),
        output=str(out),
        seed=req.seed,
        jobs=req.jobs,
        scale=scale.spec,
        unweighting_efficiency=round(req.n_events / trials, 5),
        truncated_fraction=truncated,
        trials=trials,
        events_per_second=round(req.n_events / seconds, 1),
    )


def _write_member(f, text: str) -> None:
    with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=3) as gz:
        gz.write(text.encode())
