"""The tutorial chain as data: stages, the executions each stage scatters into, and the files each
execution reads and writes. The local driver and the Yadage workflow both take their structure from
here; the notebooks take their paths from :mod:`madminer_notebooks.paths`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .generator.run import share
from .methods import baselines, method
from .params import SCANNABLE
from .paths import RunPaths


@dataclass(frozen=True)
class Stage:
    """One stage of the chain: its notebook, the parameter sections its executions depend on (besides their
    input files: a change there reruns them) and the Yadage sub-workflow it belongs to."""

    name: str
    notebook: str
    sections: tuple[str, ...]
    workflow: str  # "physics" (events to the combined file) or "ml" (samples to the limits)


STAGE_TABLE = (
    Stage("setup", "01_setup.ipynb", ("physics",), "physics"),
    Stage("generation", "02_generation.ipynb", ("generation", "run.seed"), "physics"),
    Stage("analysis", "03_analysis.ipynb", ("analysis", "run.seed"), "physics"),
    Stage("combine", "04_combine.ipynb", (), "physics"),
    Stage("sampling", "05_sampling.ipynb", ("sampling", "run.seed"), "ml"),
    Stage("training", "06_training.ipynb", ("training", "run.seed"), "ml"),
    Stage("evaluation", "07_evaluation.ipynb", ("evaluation",), "ml"),
    Stage("plotting", "08_plotting.ipynb", ("evaluation",), "ml"),
)
STAGES = tuple(s.name for s in STAGE_TABLE)
NOTEBOOKS = {s.name: s.notebook for s in STAGE_TABLE}
STAGE_SECTIONS = {s.name: s.sections for s in STAGE_TABLE}


def workflow_stages(workflow: str) -> tuple[str, ...]:
    """The stages of a sub-workflow (``physics`` or ``ml``), or of the whole chain (``combined``)."""
    return tuple(s.name for s in STAGE_TABLE if workflow in ("combined", s.workflow))


def scan_stages() -> tuple[str, ...]:
    """What a scan point reruns: from the first stage that reads a scannable section (``training.*``,
    ``evaluation.*``) to the end."""
    first = next(i for i, s in enumerate(STAGE_TABLE) if any(sec.split(".")[0] in SCANNABLE for sec in s.sections))
    return STAGES[first:]


@dataclass(frozen=True)
class Execution:
    """One run of one stage notebook."""

    stage: str
    key: str  # "" for stages that run once
    parameters: dict = field(default_factory=dict)  # step-specific notebook parameters
    inputs: tuple[str, ...] = ()  # run-folder-relative paths
    outputs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.stage}-{self.key}" if self.key else self.stage

    @property
    def notebook(self) -> str:
        return NOTEBOOKS[self.stage]


def event_file_keys(params: dict) -> list[tuple[str, int, str]]:
    """(benchmark, file index, key) of every event file: generated ones per sampling benchmark, or the
    listed external files, numbered per benchmark in the order of the list."""
    gen = params["generation"]
    if gen["backend"] == "external":
        counts: dict[str, int] = {}
        keys = []
        for entry in gen["events"]:
            b = entry["benchmark"]
            counts[b] = counts.get(b, -1) + 1
            keys.append((b, counts[b], f"{b}-{counts[b]}"))
        return keys
    return [(b, i, f"{b}-{i}") for b in gen["sampling_benchmarks"] for i in range(gen["files_per_benchmark"])]


def combine_k_factors(params: dict) -> list[float]:
    """The k-factor of every event file in ``combine_and_shuffle``, in the order of :func:`event_file_keys`.

    MadMiner normalises each event file to the full cross section (``event_norm = average`` divides the
    weights by that file's own ``nevents``) and ``combine_and_shuffle`` only concatenates, so a benchmark
    written in k files would count its cross section k times. Each file gets 1/k: together the files of a
    benchmark carry its cross section once (the average of the files' estimates), however the events were
    split into files, and MadMiner's own file format is kept.
    """
    keys = event_file_keys(params)
    files = {b: sum(1 for other, _, _ in keys if other == b) for b, _, _ in keys}
    return [1.0 / files[b] for b, _, _ in keys]


def external_entry(params: dict, benchmark: str, file_index: int) -> dict:
    """The ``generation.events`` entry behind event file (benchmark, file_index) of the external backend."""
    position = [k[:2] for k in event_file_keys(params)].index((benchmark, file_index))
    return params["generation"]["events"][position]


def file_seed(params: dict, benchmark: str, file_index: int) -> int:
    """Seed of one event file (its generation and its smearing). It depends on the run seed, the
    benchmark's position and the file index only, so a file is reproducible on its own (locally or as a
    workflow step)."""
    gen = params["generation"]
    if gen["backend"] == "external":  # benchmarks in order of first appearance: the builtin order, if so listed
        order = list(dict.fromkeys(b for b, _, _ in event_file_keys(params)))
    else:
        order = gen["sampling_benchmarks"]
    position = order.index(benchmark)
    return params["run"]["seed"] * 1_000_003 + position * 1009 + file_index


def generation_task(params: dict, benchmark: str, file_index: int) -> dict:
    """Events and seed of one generated event file."""
    gen = params["generation"]
    events = share(gen["events_per_benchmark"], gen["files_per_benchmark"], file_index)
    return {"events": events, "seed": file_seed(params, benchmark, file_index)}


def detector_level(params: dict) -> bool:
    """Whether the analysis reads Delphes output (detector level) rather than the LHE events (parton level)."""
    gen = params["generation"]
    if gen["backend"] == "madgraph":
        return gen["madgraph"]["delphes"] is not None
    if gen["backend"] == "external":
        return gen["events"][0].get("delphes") is not None  # all or none (params cross-check)
    return False


def script_only(params: dict) -> bool:
    """MadGraph runs are prepared as scripts for a cluster, not run: the chain stops after generation."""
    gen = params["generation"]
    return gen["backend"] == "madgraph" and gen["madgraph"]["script_only"]


def _generation(params: dict, p: RunPaths, b: str, i: int, key: str) -> Execution:
    rel = p.relative
    inputs: tuple[str, ...] = (rel(p.setup),)
    if script_only(params):
        outputs: tuple[str, ...] = (rel(p.madgraph_script(key)),)
    else:
        outputs = (rel(p.events(key)), rel(p.generation_summary(key)))
        if detector_level(params):
            outputs += (rel(p.delphes(key)),)
    if params["generation"]["backend"] == "external":
        # absolute paths: the manifest hashes the user's files, so a changed file is imported again
        entry = external_entry(params, b, i)
        inputs += tuple(entry[k] for k in ("path", "delphes") if entry.get(k))
    return Execution("generation", key, {"benchmark": b, "file_index": i}, inputs, outputs)


def evaluation_keys(params: dict) -> list[str]:
    """The evaluation stage's executions: every trained method, then every baseline."""
    return list(params["training"]["methods"]) + list(baselines())


def executions(params: dict, stage: str, run_dir: str = ".") -> list[Execution]:
    """The executions of a stage with their inputs and outputs (relative to the run folder)."""
    p = RunPaths(run_dir)
    setup = p.setup

    def rel_all(*files: Path) -> tuple[str, ...]:
        return tuple(p.relative(f) for f in files)

    if stage == "setup":
        return [Execution("setup", "", {}, (), rel_all(setup, p.morphing_plot))]
    if stage == "generation":
        return [_generation(params, p, b, i, key) for b, i, key in event_file_keys(params)]
    if stage == "analysis":
        detector = detector_level(params)
        return [
            Execution(
                "analysis",
                key,
                {"benchmark": b, "file_index": i},
                rel_all(setup, p.events(key), *((p.delphes(key),) if detector else ())),
                rel_all(p.analysed(key)),
            )
            for b, i, key in event_file_keys(params)
        ]
    if stage == "combine":
        analysed = rel_all(*(p.analysed(key) for _, _, key in event_file_keys(params)))
        return [Execution("combine", "", {}, analysed, rel_all(p.combined, p.distributions_plot))]
    samples = rel_all(*p.sample_files())
    members = params["training"]["ensemble"]  # of an ensemble's saved estimator (RunPaths.model_files)
    if stage == "sampling":
        return [Execution("sampling", "", {}, rel_all(p.combined), samples)]
    if stage == "training":
        return [
            Execution("training", m, {"method": m}, samples, rel_all(*p.model_files(m, members), p.loss_plot(m)))
            for m in params["training"]["methods"]
        ]
    if stage == "evaluation":
        out = []
        for name in evaluation_keys(params):
            entry = method(name)
            inputs = rel_all(p.combined, *(p.model_files(name, members) if entry.trained else ()))
            outputs = (p.limits(name), p.limit_result(name), p.p_values_plot(name))
            outputs += (p.closure_plot(name),) if entry.closure else ()
            out.append(Execution("evaluation", name, {"method": name}, inputs, rel_all(*outputs)))
        return out
    if stage == "plotting":
        limits = [f(n) for n in evaluation_keys(params) for f in (p.limits, p.limit_result)]
        summaries = [p.generation_summary(key) for _, _, key in event_file_keys(params)]
        outputs = (p.intervals, p.fisher, p.limits_plot, p.p_values_summary_plot, p.cross_sections_plot, p.fisher_plot)
        return [Execution("plotting", "", {}, rel_all(*limits, *summaries, setup, p.combined), rel_all(*outputs))]
    raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
