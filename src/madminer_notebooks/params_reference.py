"""The reference of the parameter files, generated from the schema: ``docs/parameters.md``.

Each key's type and check come from :data:`.params.SCHEMA`, its default from :data:`.params.KEY_DEFAULTS`,
:data:`.params.SHOWER_KEYS` and :data:`.params.OPTIONAL_SECTIONS`, and what it means from
:data:`DESCRIPTIONS` below, so the page cannot drift from what the validator accepts: a test renders it
again and compares, and fails on a key without a description or a description without a key.

``python -m madminer_notebooks.params_reference docs/parameters.md`` writes the page.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .atomic import atomic_file
from .params import KEY_DEFAULTS, OPTIONAL_SECTIONS, OPTIONAL_SHOWER, SCHEMA, SHOWER_KEYS, ListOf, MapOf, Switch

#: What each key means. ``NAME`` stands for a name the user chooses (a parameter, a benchmark, an
#: observable); ``[]`` for every entry of a list.
DESCRIPTIONS: dict[str, str] = {
    "description": "free text about the parameter set",
    "run.seed": "every stochastic step (generation, smearing, sampling, training) derives its seed from it",
    "run.parallel": "executions the driver runs at once (event files, methods)",
    "physics.parameters.NAME.lha_block": "the parameter's block in the param card (e.g. `dim6`)",
    "physics.parameters.NAME.lha_id": "its index in that block",
    "physics.parameters.NAME.morphing_max_power": "the highest power of the parameter in the squared amplitude",
    "physics.parameters.NAME.param_card_transform": "how theta becomes the card's value (e.g. `16.52*theta`)",
    "physics.parameters.NAME.range": "the range the morphing basis is optimised for",
    "physics.benchmarks.NAME.NAME": "a benchmark point: the value of every parameter (one named `sm` is needed)",
    "physics.morphing.max_overall_power": "the highest combined power of all parameters in the morphing",
    "physics.morphing.seed": "seed of MadMiner's search for a well-conditioned morphing basis",
    "generation.backend": "`builtin` (our generator), `madgraph` (MG5_aMC, Pythia, Delphes) or `external` "
    "(existing LHE files)",
    "generation.sampling_benchmarks": "the benchmarks events are sampled at",
    "generation.events_per_benchmark": "events generated at each sampling benchmark",
    "generation.files_per_benchmark": "event files per benchmark (executions that run in parallel; each file "
    "gets the k-factor 1/k in the combination)",
    "generation.scale": "renormalisation and factorisation scale: `fixed:125` or `dynamic3`",
    "generation.jobs": "generator processes per event file",
    "generation.cuts.ptj": "minimal jet pT at generation, GeV",
    "generation.cuts.etaj": "maximal jet |eta| at generation",
    "generation.cuts.drjj": "minimal Delta R between the jets at generation",
    "generation.madgraph.mg_dir": "the MG5_aMC folder; null: the environment variable `MG5_DIR`",
    "generation.madgraph.cards": "folder with the run, param, reweight (and Pythia) cards; null: the cards of the "
    "tutorial process shipped with the package",
    "generation.madgraph.pythia": "shower with Pythia 8 (MadGraph's interface) into HepMC",
    "generation.madgraph.delphes": "a Delphes build folder (with DelphesHepMC2): detector level; null: parton level",
    "generation.madgraph.delphes_card": "null: `DELPHES/cards/delphes_card_ATLAS.tcl`",
    "generation.madgraph.python": "the Python MadGraph runs with; null: `$MG5_PYTHON`, else `python3` on PATH",
    "generation.madgraph.initial_command": "a command before every MadGraph call, e.g. `source .../setup.sh`",
    "generation.madgraph.script_only": "prepare the MadGraph runs and their scripts for a cluster; do not run them",
    "generation.events[].path": "an existing LHE file (relative paths are taken from the parameter file's folder)",
    "generation.events[].benchmark": "the benchmark it was sampled at",
    "generation.events[].delphes": "the Delphes ROOT file of the same events: analysis at detector level",
    "analysis.reader": "`columnar` (ours, the same output as MadMiner's, faster) or `madminer` (MadMiner's "
    "`LHEReader`)",
    "analysis.level": "`parton` (smeared LHE objects) or `shower` (Pythia 8, FastJet and the ATLAS card's detector)",
    "analysis.shower.mpi": "multiple parton interactions (the underlying event); off is about 7 times faster",
    "analysis.shower.jet_radius": "anti-kT radius (the ATLAS card's)",
    "analysis.shower.jet_pt_min": "GeV, of the clustered towers, before the jet energy scale (the card's JetPTMin)",
    "analysis.shower.jet_eta_max": "maximal jet |eta|",
    "analysis.smearing.jets.pdgids": "particle ids smeared as jets (parton level)",
    "analysis.smearing.jets.energy_resolution_abs": "sigma(E) = abs + rel * E, GeV",
    "analysis.smearing.jets.energy_resolution_rel": "relative part of sigma(E)",
    "analysis.smearing.jets.eta_resolution_abs": "sigma(eta)",
    "analysis.smearing.jets.phi_resolution_abs": "sigma(phi)",
    "analysis.smearing.photons.pdgids": "particle ids smeared as photons (parton level)",
    "analysis.smearing.photons.energy_resolution_abs": "sigma(E) = abs + rel * E, GeV",
    "analysis.smearing.photons.energy_resolution_rel": "relative part of sigma(E)",
    "analysis.smearing.photons.eta_resolution_abs": "sigma(eta)",
    "analysis.smearing.photons.phi_resolution_abs": "sigma(phi)",
    "analysis.observables.NAME": "an observable as a MadMiner expression, e.g. `j[0].pt` (checked before any "
    "stage runs)",
    "analysis.cuts.m_aa": "diphoton mass window, GeV",
    "analysis.cuts.pt_j1_min": "minimal pT of the leading jet, GeV",
    "sampling.n_train_local": "SALLY's training sample (events at the SM with their joint score)",
    "sampling.n_train_ratio": "ALICE(S)'s training sample (events with theta0 from the prior)",
    "sampling.n_test": "events of the evaluation sample",
    "sampling.n_thetas": "theta0 points drawn from the prior for the ratio samples",
    "sampling.prior.NAME": "`[flat, low, high]` or `[gaussian, mean, width]` per parameter",
    "sampling.test_split": "the fraction of events held out for evaluation (never trained on)",
    "training.methods": "the trained methods (the methods table, `madminer_notebooks/methods.py`)",
    "training.hidden": "hidden layer sizes",
    "training.activation": "the hidden layers' activation",
    "training.epochs": "epochs (early stopping restores the best)",
    "training.batch_size": "events per batch",
    "training.learning_rate": "the initial learning rate",
    "training.final_learning_rate": "the learning rate decays exponentially to this",
    "training.ensemble": "SALLY estimators in the ensemble (their spread is the error of its Fisher information)",
    "training.alpha": "ALICES: weight of the score term in the loss",
    "training.validation_split": "fraction of the training sample used for validation (early stopping)",
    "training.trainer": "`columnar` (MadMiner's trainers fed from whole tensors: the same batches and losses, "
    "faster) or `madminer` (its per-sample `DataLoader`)",
    "evaluation.luminosity_ifb": "integrated luminosity, fb^-1",
    "evaluation.grid.NAME": "the range scanned per parameter (must contain every 95% CL region)",
    "evaluation.resolution": "points per axis of the coarse grid",
    "evaluation.hist_vars": "observables of the histogram baseline (one or two)",
    "evaluation.hist_bins": "bins per histogram axis (also SALLY's score histograms)",
    "evaluation.calibrate_ratio": "ALICE(S): r_hat normalised on half of the held-out events, the Asimov data "
    "the other half",
    "evaluation.fisher": "`columnar` (MadMiner's `FisherInformation` with its histograms filled over whole "
    "columns: the same numbers, a hundred times faster) or `madminer`",
    "tracking.enabled": "track the ML runs in MLflow (`MLFLOW_TRACKING_URI` in the environment turns it on too)",
    "tracking.uri": "the MLflow tracking URI; null: a SQLite store in the run folder",
    "tracking.experiment_prefix": "prefix of the MLflow experiments' names",
    "scan.NAME": "`sampling.KEY`, `training.KEY` or `evaluation.KEY`: a list of values; every combination is"
    " sampled, trained and evaluated on the run's events",
}


def _rows(node: Any, where: str, backend: str = "") -> Iterator[tuple[str, str, str]]:
    """(dotted key, expected, backend) of every leaf below ``node``."""
    if isinstance(node, Switch):
        for choice, option in node.options.items():
            yield from _rows(option, where, choice)
    elif isinstance(node, MapOf):
        yield from _rows(node.value, f"{where}.NAME", backend)
    elif isinstance(node, ListOf):
        yield from _rows(node.value, f"{where}[]", backend)
    elif isinstance(node, dict):
        for key, sub in node.items():
            yield from _rows(sub, f"{where}.{key}" if where else key, backend)
    elif node is OPTIONAL_SHOWER:  # a mapping of its own keys, documented one by one
        for key, (leaf, _) in SHOWER_KEYS.items():
            yield f"{where}.{key}", leaf.expected, backend
    else:
        yield where, node.expected, backend


def _default(key: str) -> str:
    section, _, rest = key.partition(".")
    if key in KEY_DEFAULTS:
        value = KEY_DEFAULTS[key]
    elif key.startswith("analysis.shower."):
        value = SHOWER_KEYS[key.removeprefix("analysis.shower.")][1]
    elif section in OPTIONAL_SECTIONS and rest in OPTIONAL_SECTIONS[section]:
        value = OPTIONAL_SECTIONS[section][rest]
    else:
        return ""
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def table() -> list[tuple[str, str, str, str, str]]:
    """(section, key, expected, default, meaning) of every key; a key of several backends is one row."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for key, expected, backend in _rows(SCHEMA, ""):
        _, backends = merged.setdefault(key, (expected, []))
        if backend:
            backends.append(backend)
    all_backends = len(next(n for n in SCHEMA.values() if isinstance(n, Switch)).options)
    rows = []
    for key, (expected, backends) in merged.items():
        meaning = DESCRIPTIONS[key]
        if backends and len(backends) < all_backends:
            meaning += " (backend " + " and ".join(f"`{b}`" for b in backends) + ")"
        rows.append((key.partition(".")[0], key, expected, _default(key), meaning))
    return rows


def undocumented() -> tuple[list[str], list[str]]:
    """Keys of the schema without a description, and descriptions of no key."""
    keys = {key for key, _, _ in _rows(SCHEMA, "")}
    return sorted(keys - set(DESCRIPTIONS)), sorted(set(DESCRIPTIONS) - keys)


def render() -> str:
    lines = [
        "# Parameters",
        "",
        "<!-- generated by `python -m madminer_notebooks.params_reference docs/parameters.md` from the schema"
        " (src/madminer_notebooks/params.py); do not edit by hand -->",
        "",
        "A parameter file (`params/*.yaml`) has the sections below; every key is checked before any stage runs, "
        "and an error names the file, the key and what was expected. `NAME` is a name you choose, `[]` every "
        "entry of a list. A key with a default may be left out or set to null. The sections `tracking` and "
        "`scan` may be left out.",
    ]
    section = None
    for sec, key, expected, default, meaning in table():
        if sec != section:
            section = sec
            lines += ["", f"## `{sec}`", "", "| key | expected | default | meaning |", "| --- | --- | --- | --- |"]
        lines.append(f"| `{key}` | {expected.replace('|', '/')} | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m madminer_notebooks.params_reference docs/parameters.md", file=sys.stderr)
        return 2
    with atomic_file(Path(argv[0])) as tmp:
        tmp.write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
