"""Where every file of a run lives: the one place that spells a run-folder file name. The notebooks, the
chain's declared inputs and outputs, the driver, the workflow steps and the report all ask :class:`RunPaths`,
so none of them can disagree about a path.

Each file is one line below: a fixed file is a property, a file per event file, method or plot key is a
method taking that key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .methods import PARAMETERISED_RATIO
from .methods import method as method_entry

#: The samples that the sampling stage writes, by set: the arrays MadMiner's ``SampleAugmenter`` returns.
SAMPLE_SETS: dict[str, tuple[str, ...]] = {
    "train_local": ("x", "theta", "t_xz"),
    "train_ratio": ("x", "theta0", "theta1", "y", "r_xz", "t_xz"),
    "test": ("x", "theta"),
}

#: What MadMiner's ``Estimator.save`` writes: settings, weights and the input scaling, of x for every
#: estimator and of theta for the parameterised ones (ALICE, ALICES). A loaded estimator whose scaling files
#: are missing silently evaluates unscaled inputs, so every one of them is a declared output and input.
ESTIMATOR_FILES = ("settings.json", "state_dict.pt", "x_means.npy", "x_stds.npy")
THETA_SCALING_FILES = ("theta_means.npy", "theta_stds.npy")


def _file(relative: str, doc: str) -> property:
    return property(lambda self: self.root / relative, doc=doc)


def _keyed(template: str, doc: str) -> Callable[[RunPaths, str], Path]:
    def path(self: RunPaths, key: str) -> Path:
        return self.root / template.format(key)

    path.__doc__ = doc
    return path


class RunPaths:
    """The files of the run folder ``root`` (resolved once; relative paths are taken from it)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunPaths) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"RunPaths({str(self.root)!r})"

    # folders
    data = _file("data", "MadMiner's files, samples, limits")
    samples = _file("data/samples", "the training and test samples")
    models = _file("models", "one folder per trained method")
    plots = _file("plots", "every figure of the run")
    notebooks = _file("notebooks", "the executed notebooks")
    report = _file("report", "the HTML report")

    # files per run
    setup = _file("data/setup.h5", "MadMiner's setup: parameters, benchmarks, morphing")
    combined = _file("data/combined.h5", "the analysed event files, combined and shuffled")
    sampling_summary = _file("data/samples/sampling.json", "sample sizes and effective event counts")
    fisher = _file("data/fisher_information.json", "the Fisher information of every approach")
    intervals = _file("data/intervals.json", "best fits, intervals and quality of every method")
    summary = _file("summary.json", "the run's headline numbers")
    manifest = _file("manifest.json", "what ran, with which inputs (the driver's resume record)")

    # files per event file (key "<benchmark>-<index>")
    events = _keyed("data/events/{}.lhe.gz", "the LHE events of one event file")
    delphes = _keyed("data/events/{}.delphes.root", "detector-level events (Delphes ROOT file), if simulated")
    generation_summary = _keyed("data/events/{}.json", "cross section and event counts of one event file")
    madgraph = _keyed("data/madgraph/{}", "MadGraph's process folder and logs (backend madgraph)")
    madgraph_script = _keyed("data/madgraph/{}/process/madminer/run.sh", "the script prepared for a cluster")
    analysed = _keyed("data/analysed/{}.h5", "one event file's observables and weights")

    # files per method (a training method or a baseline)
    model = _keyed("models/{}", "the saved estimator of a trained method and its loss history")
    limits = _keyed("data/limits/{}.npz", "q on the coarse grid and on the last refinement grid")
    limit_result = _keyed("data/limits/{}.json", "best fit, intervals, closure checks and Fisher information")

    # plots, by stage
    morphing_plot = _file("plots/morphing_basis.png", "the morphing basis and its weights")
    events_plot = _keyed("plots/events_{}.png", "generated kinematics of one event file")
    observables_plot = _keyed("plots/observables_{}.png", "the observables of one event file")
    parton_vs_shower_plot = _keyed("plots/parton_vs_shower_{}.png", "shower level against parton level")
    distributions_plot = _file("plots/distributions.png", "the observables at several benchmarks")
    samples_plot = _file("plots/samples.png", "the training samples")
    loss_plot = _keyed("plots/loss_{}.png", "training and validation loss of a method")
    p_values_plot = _keyed("plots/p_values_{}.png", "p-values of one method on the grid")
    closure_plot = _keyed("plots/closure_{}.png", "a trained method's closure check")
    limits_plot = _file("plots/limits.png", "every method's contours")
    p_values_summary_plot = _file("plots/p_values.png", "every method's p-values")
    cross_sections_plot = _file("plots/cross_sections.png", "the cross section over the parameter plane")
    fisher_plot = _file("plots/fisher_information.png", "the Fisher ellipses of every approach")

    def sample(self, variable: str, sample_set: str) -> Path:
        """One array of the samples, e.g. ``sample("x", "train_local")``."""
        if variable not in SAMPLE_SETS.get(sample_set, ()):
            raise KeyError(f"no sample {variable}_{sample_set} (samples: {SAMPLE_SETS})")
        return self.samples / f"{variable}_{sample_set}.npy"

    def sample_files(self) -> tuple[Path, ...]:
        """Every file the sampling stage writes."""
        arrays = tuple(self.sample(v, s) for s, variables in SAMPLE_SETS.items() for v in variables)
        return (*arrays, self.sampling_summary)

    def estimator(self, method: str) -> Path:
        """The name ``Estimator.save`` / ``load_estimator`` take: ``ensemble`` for an ensemble (SALLY), which
        MadMiner saves as a folder, else the ``estimator`` prefix of the estimator's files."""
        return self.model(method) / ("ensemble" if method_entry(method).ensemble else "estimator")

    def losses(self, method: str) -> Path:
        return self.model(method) / "losses.json"

    def model_files(self, method: str, ensemble_members: int) -> tuple[Path, ...]:
        """Every file of a saved estimator and its loss history. An ensemble saves ``ensemble/ensemble.json``
        and one ``estimator_<i>_*`` set per member; a single estimator saves ``estimator_*``, with the theta
        scaling if it is parameterised."""
        entry = method_entry(method)
        folder = self.estimator(method)
        if entry.ensemble:
            names = [folder / "ensemble.json"]
            names += [folder / f"estimator_{i}_{f}" for i in range(ensemble_members) for f in ESTIMATOR_FILES]
        else:
            scaling = THETA_SCALING_FILES if entry.kind == PARAMETERISED_RATIO else ()
            names = [Path(f"{folder}_{f}") for f in ESTIMATOR_FILES + scaling]
        return (*names, self.losses(method))

    def make_folders(self) -> None:
        for folder in (self.data / "events", self.data / "analysed", self.samples, self.data / "limits",
                       self.models, self.plots, self.notebooks):  # fmt: skip
            folder.mkdir(parents=True, exist_ok=True)

    def relative(self, path: Path) -> str:
        """``path`` relative to the run folder, without following links (a workflow step's inputs are
        links into other steps' folders)."""
        return os.path.relpath(os.path.abspath(path), self.root)
