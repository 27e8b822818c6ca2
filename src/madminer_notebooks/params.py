"""Parameter files (``params/*.yaml``): schema, validation with errors that name file, key and
expectation, and per-section hashes that the driver uses to decide what must rerun.

The schema is plain data below, with each default next to it, so that the validator, the notebooks and the
reference (``docs/parameters.md``, rendered by :mod:`.params_reference`) all read the same definitions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .methods import PARAMETERISED_RATIO, method, trained_methods
from .shower.settings import SHOWER_DEFAULTS

log = logging.getLogger(__name__)


class ParamsError(ValueError):
    """A parameter file is invalid; the message names the file, the key and what was expected."""


# --- leaf checks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """A value's check, and what it expects in words (a callable for words read from a table at check time)."""

    description: str | Callable[[], str]
    check: Callable[[Any], bool]

    @property
    def expected(self) -> str:
        return self.description() if callable(self.description) else self.description


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


POS_INT = Leaf("a positive integer", lambda v: _is_int(v) and v > 0)
NONNEG_INT = Leaf("a non-negative integer", lambda v: _is_int(v) and v >= 0)
NUMBER = Leaf("a number", _is_number)
POS_NUMBER = Leaf("a positive number", lambda v: _is_number(v) and v > 0)
NONNEG_NUMBER = Leaf("a non-negative number", lambda v: _is_number(v) and v >= 0)
FRACTION = Leaf("a number between 0 and 1 (exclusive)", lambda v: _is_number(v) and 0 < v < 1)
STRING = Leaf("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")
BOOL = Leaf("true or false", lambda v: isinstance(v, bool))
RANGE = Leaf(
    "a range [low, high] with low < high",
    lambda v: isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v) and v[0] < v[1],
)
INT_LIST = Leaf(
    "a non-empty list of positive integers", lambda v: isinstance(v, list) and v and all(POS_INT.check(x) for x in v)
)
STRING_LIST = Leaf(
    "a non-empty list of strings", lambda v: isinstance(v, list) and v and all(STRING.check(x) for x in v)
)


def one_of(*choices: str) -> Leaf:
    return Leaf("one of " + ", ".join(repr(c) for c in choices), lambda v: v in choices)


def optional(leaf: Leaf) -> Leaf:
    return Leaf(leaf.expected + " or null", lambda v: v is None or leaf.check(v))


@dataclass(frozen=True)
class MapOf:
    """A mapping with free keys (names) and values of one schema."""

    value: Any
    what: str = "a mapping"
    non_empty: bool = True


@dataclass(frozen=True)
class ListOf:
    """A non-empty list whose items share one schema."""

    value: Any
    what: str = "a non-empty list"


@dataclass(frozen=True)
class Switch:
    """A mapping whose schema depends on the value of one key (``generation.backend``)."""

    key: str
    options: dict[str, Any]


# --- the schema ---------------------------------------------------------------------------------------

PARAMETER = {
    "lha_block": STRING,
    "lha_id": POS_INT,
    "morphing_max_power": POS_INT,
    "param_card_transform": STRING,
    "range": RANGE,
}

#: ``analysis.shower``: the keys it may set, each with what it must be and what leaving it out means
#: (:data:`.shower.settings.SHOWER_DEFAULTS`: the jets of the ATLAS card).
_SHOWER_CHECKS: dict[str, Leaf] = {
    "mpi": BOOL,
    "jet_radius": Leaf("a number in (0, 1.5]", lambda v: _is_number(v) and 0 < v <= 1.5),
    "jet_pt_min": NONNEG_NUMBER,
    "jet_eta_max": POS_NUMBER,
}
SHOWER_KEYS: dict[str, tuple[Leaf, Any]] = {key: (_SHOWER_CHECKS[key], SHOWER_DEFAULTS[key]) for key in SHOWER_DEFAULTS}
SHOWER = Leaf(
    "a mapping with any of the keys " + ", ".join(f"{k} ({leaf.expected})" for k, (leaf, _) in SHOWER_KEYS.items()),
    lambda v: isinstance(v, dict) and all(k in SHOWER_KEYS and SHOWER_KEYS[k][0].check(x) for k, x in v.items()),
)
OPTIONAL_SHOWER = optional(SHOWER)

SMEARING = {
    "pdgids": Leaf("a non-empty list of integers", lambda v: isinstance(v, list) and v and all(_is_int(x) for x in v)),
    "energy_resolution_abs": NONNEG_NUMBER,
    "energy_resolution_rel": NONNEG_NUMBER,
    "eta_resolution_abs": NONNEG_NUMBER,
    "phi_resolution_abs": NONNEG_NUMBER,
}

#: ``generation.madgraph``: an MG5_aMC installation and the cards it runs (paths relative to the parameter
#: file; null means the environment variable or the repository's cards for the tutorial process).
MADGRAPH = {
    "mg_dir": optional(STRING),  # null: $MG5_DIR
    "cards": optional(STRING),  # null: the cards of the tutorial process shipped with the package
    "pythia": BOOL,  # shower with Pythia 8 (MadGraph's interface) into HepMC
    "delphes": optional(STRING),  # a Delphes build folder (with DelphesHepMC2), or null: parton level
    "delphes_card": optional(STRING),  # null: DELPHES/cards/delphes_card_ATLAS.tcl
    "python": optional(STRING),  # the Python MadGraph runs with (null: $MG5_PYTHON, else python3 on PATH)
    "initial_command": optional(STRING),  # e.g. "source /cvmfs/.../setup.sh" before every MadGraph call
    "script_only": BOOL,  # prepare the MadGraph run and its script for a cluster; do not run it
}

#: One entry of ``generation.events``: an existing LHE file and the benchmark it was sampled at.
EXTERNAL_EVENTS = {
    "path": STRING,  # relative to the parameter file
    "benchmark": STRING,
    "delphes": optional(STRING),  # the Delphes ROOT file of the same events: analysis at detector level
}

PRIOR = Leaf(
    "['flat', low, high] with low < high, or ['gaussian', mean, width] with width > 0",
    lambda v: (
        isinstance(v, list)
        and len(v) == 3
        and v[0] in ("flat", "gaussian")
        and _is_number(v[1])
        and _is_number(v[2])
        and (v[1] < v[2] if v[0] == "flat" else v[2] > 0)
    ),
)

#: ``training.trainer``: MadMiner's trainers fed from whole tensors (:mod:`.training`), or as MadMiner feeds them.
TRAINERS = ("columnar", "madminer")

SCHEMA: dict[str, Any] = {
    "description": optional(STRING),
    "run": {"seed": NONNEG_INT, "parallel": POS_INT},
    "physics": {
        "parameters": MapOf(PARAMETER, "a mapping of parameter names to definitions"),
        "benchmarks": MapOf(MapOf(NUMBER, "a mapping of parameter names to values"), "a mapping of benchmark names"),
        "morphing": {"max_overall_power": POS_INT, "seed": NONNEG_INT},
    },
    "generation": Switch(
        "backend",
        {
            "builtin": {
                "backend": STRING,
                "sampling_benchmarks": STRING_LIST,
                "events_per_benchmark": POS_INT,
                "files_per_benchmark": POS_INT,
                "scale": STRING,
                "jobs": POS_INT,
                "cuts": {"ptj": POS_NUMBER, "etaj": POS_NUMBER, "drjj": NONNEG_NUMBER},
            },
            "madgraph": {
                "backend": STRING,
                "sampling_benchmarks": STRING_LIST,
                "events_per_benchmark": POS_INT,
                "files_per_benchmark": POS_INT,
                "madgraph": MADGRAPH,
            },
            "external": {"backend": STRING, "events": ListOf(EXTERNAL_EVENTS, "a non-empty list of event files")},
        },
    ),
    "analysis": {
        "reader": optional(one_of("columnar", "madminer")),
        "level": optional(one_of("parton", "shower")),
        "shower": OPTIONAL_SHOWER,  # null/absent keys: SHOWER_DEFAULTS
        "smearing": {"jets": SMEARING, "photons": SMEARING},
        "observables": MapOf(STRING, "a mapping of observable names to MadMiner expressions"),
        "cuts": {"m_aa": RANGE, "pt_j1_min": NONNEG_NUMBER},
    },
    "sampling": {
        "n_train_local": POS_INT,
        "n_train_ratio": POS_INT,
        "n_test": POS_INT,
        "n_thetas": POS_INT,
        "prior": MapOf(PRIOR, "a mapping of parameter names to priors"),
        "test_split": FRACTION,
    },
    "training": {
        "methods": Leaf(
            lambda: "a non-empty list of methods from " + ", ".join(trained_methods()),
            lambda v: isinstance(v, list) and v and all(m in trained_methods() for m in v) and len(set(v)) == len(v),
        ),
        "hidden": INT_LIST,
        "activation": one_of("tanh", "relu", "sigmoid"),
        "epochs": POS_INT,
        "batch_size": POS_INT,
        "learning_rate": POS_NUMBER,
        "final_learning_rate": optional(POS_NUMBER),
        "ensemble": optional(POS_INT),
        "alpha": NONNEG_NUMBER,
        "validation_split": FRACTION,
        "trainer": optional(one_of(*TRAINERS)),
    },
    "evaluation": {
        "luminosity_ifb": POS_NUMBER,
        "grid": MapOf(RANGE, "a mapping of parameter names to ranges [low, high]"),
        "resolution": Leaf("an integer >= 3", lambda v: _is_int(v) and v >= 3),
        "hist_vars": STRING_LIST,
        "hist_bins": POS_INT,
        "calibrate_ratio": optional(BOOL),
        "fisher": optional(one_of("columnar", "madminer")),
    },
    # optional sections: absent means the defaults below (OPTIONAL_SECTIONS)
    "tracking": {
        "enabled": BOOL,  # MLFLOW_TRACKING_URI in the environment turns tracking on as well
        "uri": optional(STRING),  # null: a SQLite store in the run folder
        "experiment_prefix": optional(STRING),
    },
    "scan": MapOf(
        Leaf("a non-empty list of values", lambda v: isinstance(v, list) and len(v) > 0),
        "a mapping of training.* / evaluation.* keys to lists of values",
        non_empty=False,
    ),
}

#: Optional keys (leaves that accept null) and what leaving them out, or null, means. What each key means
#: is in :mod:`.params_reference` (and docs/parameters.md, generated from it).
KEY_DEFAULTS: dict[str, Any] = {
    "analysis.reader": "columnar",
    "analysis.level": "parton",
    "training.final_learning_rate": 1.0e-4,
    "training.ensemble": 5,
    "training.trainer": "columnar",
    "evaluation.calibrate_ratio": True,
    "evaluation.fisher": "columnar",
}

#: How many EFT parameters the chain handles: the limits scan a 2D grid and draw 2D contours.
SUPPORTED_PARAMETERS = 2

#: Sections a parameter file may leave out, and what leaving them out means.
OPTIONAL_SECTIONS: dict[str, Any] = {"tracking": {"enabled": False}, "scan": {}}

#: The keys a scan may vary: those that only sampling, training and evaluation read (the physics and its
#: events stay those of the run).
SCANNABLE = ("sampling", "training", "evaluation")


def _validate(node: Any, schema: Any, where: str, errors: list[str]) -> None:
    if isinstance(schema, Leaf):
        if not schema.check(node):
            errors.append(f"{where}: expected {schema.expected}, got {node!r}")
        return
    if isinstance(schema, Switch):
        choice = node.get(schema.key) if isinstance(node, dict) else None
        if choice not in schema.options:
            expected = "one of " + ", ".join(repr(c) for c in schema.options)
            errors.append(f"{_join(where, schema.key)}: expected {expected}, got {choice!r}")
            return
        _validate(node, schema.options[choice], where, errors)
        return
    if isinstance(schema, ListOf):
        if not isinstance(node, list) or not node:
            errors.append(f"{where}: expected {schema.what}, got {node!r}")
            return
        for i, item in enumerate(node):
            _validate(item, schema.value, f"{where}[{i}]", errors)
        return
    if isinstance(schema, MapOf):
        if not isinstance(node, dict) or (schema.non_empty and not node):
            errors.append(f"{where}: expected {schema.what}, got {node!r}")
            return
        for key, value in node.items():
            _validate(value, schema.value, f"{where}.{key}", errors)
        return
    if not isinstance(node, dict):
        errors.append(f"{where}: expected a mapping with keys {', '.join(schema)}, got {node!r}")
        return
    for key in node:
        if key not in schema:
            errors.append(f"{_join(where, key)}: unknown key (expected one of: {', '.join(schema)})")
    for key, sub in schema.items():
        if key not in node:
            if isinstance(sub, Leaf) and sub.check(None):
                continue  # optional key
            errors.append(f"{_join(where, key)}: missing")
            continue
        _validate(node[key], sub, _join(where, key), errors)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _cross_checks(p: dict, errors: list[str]) -> None:
    """Relations between sections that a per-key schema cannot express."""
    parameters = list(p["physics"]["parameters"])
    if len(parameters) != SUPPORTED_PARAMETERS:
        errors.append(
            f"physics.parameters: the chain's limits, closure checks and plots are written for exactly "
            f"{SUPPORTED_PARAMETERS} parameters (a 2D grid and 2D contours); got {len(parameters)}: "
            f"{', '.join(parameters) or 'none'}"
        )
    for name, values in p["physics"]["benchmarks"].items():
        for key in values:
            if key not in parameters:
                errors.append(
                    f"physics.benchmarks.{name}.{key}: unknown parameter (expected one of: {', '.join(parameters)})"
                )
        for key in parameters:
            if key not in values:
                errors.append(f"physics.benchmarks.{name}.{key}: missing (every benchmark sets every parameter)")
    if "sm" not in p["physics"]["benchmarks"]:
        errors.append("physics.benchmarks.sm: missing (the chain needs the Standard Model point named 'sm')")
    gen = p["generation"]
    sampled = [("generation.sampling_benchmarks", b) for b in gen.get("sampling_benchmarks", [])]
    sampled += [(f"generation.events[{i}].benchmark", e["benchmark"]) for i, e in enumerate(gen.get("events", []))]
    for where, b in sampled:
        if b not in p["physics"]["benchmarks"]:
            errors.append(f"{where}: {b!r} is not a benchmark in physics.benchmarks")
    if gen["backend"] == "madgraph" and gen["madgraph"]["delphes"] and not gen["madgraph"]["pythia"]:
        errors.append(
            "generation.madgraph.delphes: needs generation.madgraph.pythia: true (Delphes reads showered events)"
        )
    if gen["backend"] == "external" and len({e.get("delphes") is None for e in gen["events"]}) > 1:
        errors.append("generation.events: give a delphes file for every entry or for none (one analysis level)")
    delphes = (gen["backend"] == "madgraph" and gen["madgraph"].get("delphes")) or (
        gen["backend"] == "external" and any(e.get("delphes") for e in gen["events"])
    )
    if p["analysis"].get("level") == "shower" and delphes:
        errors.append(
            "analysis.level: shower showers the LHE events with Pythia here, but the events come with Delphes "
            "files (detector level already); use one or the other"
        )
    for section in ("sampling.prior", "evaluation.grid"):
        a, b = section.split(".")
        given = p[a][b]
        if sorted(given) != sorted(parameters):
            errors.append(f"{section}: expected exactly the parameters {', '.join(parameters)}, got {', '.join(given)}")
    observables = p["analysis"]["observables"]
    for var in p["evaluation"]["hist_vars"]:
        if var not in observables:
            errors.append(f"evaluation.hist_vars: {var!r} is not in analysis.observables")
    _check_prior_covers_grid(p, errors)
    _check_cut_reach(p, errors)
    for dotted, values in p["scan"].items():
        _check_scan_key(p, dotted, values, errors)
    for name in list(p["physics"]["benchmarks"]) + list(observables):
        if not name.replace("_", "").replace("-", "").isalnum():
            errors.append(f"{name!r}: names may use only letters, digits, '_' and '-'")


def _check_prior_covers_grid(p: dict, errors: list[str]) -> None:
    """ALICE/ALICES learn r(x|theta) only where the prior put training points: a prior whose bulk misses the
    evaluation grid trains the estimators where no limit is evaluated, and evaluates them where they never
    saw data."""
    if not any(method(m).kind == PARAMETERISED_RATIO for m in p["training"]["methods"]):
        return
    for name, (kind, a, b) in p["sampling"]["prior"].items():
        low, high = (a, b) if kind == "flat" else (a - b, a + b)
        grid_low, grid_high = p["evaluation"]["grid"].get(name, (low, high))
        if high < grid_low or low > grid_high:
            bulk = f"[{low:g}, {high:g}]" + (" (mean +- width)" if kind == "gaussian" else "")
            errors.append(
                f"sampling.prior.{name}: {kind} prior {bulk} lies outside evaluation.grid.{name} "
                f"[{grid_low:g}, {grid_high:g}]; the ratio estimators would never see the points where the limits "
                "are evaluated (centre the prior on the grid)"
            )


def _check_cut_reach(p: dict, errors: list[str]) -> None:
    """Analysis cuts that no event of the built-in generator can pass: its Higgs bosons are on shell (the
    diphoton mass is MH, smeared by the photon resolution) and no jet has more than half the collision
    energy. Other event sources may hold other processes, so for them this is only a warning."""
    from .generator.constants import BEAM_ENERGY, MH

    cuts = p["analysis"]["cuts"]
    problems = []
    low, high = cuts["m_aa"]
    if not low < MH < high:
        problems.append(
            f"analysis.cuts.m_aa: the window [{low:g}, {high:g}] GeV does not contain the Higgs mass {MH:g} GeV, "
            "where every diphoton pair of H -> gamma gamma lies (no event would pass)"
        )
    if cuts["pt_j1_min"] >= BEAM_ENERGY:
        problems.append(
            f"analysis.cuts.pt_j1_min: {cuts['pt_j1_min']:g} GeV is beyond the largest jet pT at 13 TeV "
            f"({BEAM_ENERGY:g} GeV; no event would pass)"
        )
    if p["generation"]["backend"] == "builtin":
        errors.extend(problems)
    else:
        for problem in problems:
            log.warning("%s (warning only: generation.backend %s may hold other processes)", problem,
                        p["generation"]["backend"])  # fmt: skip


def _check_scan_key(p: dict, dotted: str, values: list, errors: list[str]) -> None:
    """A scanned key must be one that sampling, training or evaluation reads, and every value must pass its
    schema."""
    where = f"scan.{dotted}"
    first, _, rest = dotted.partition(".")
    if first not in SCANNABLE or not rest or "." in rest or rest not in SCHEMA[first]:
        keys = ", ".join(f"{s}.{k}" for s in SCANNABLE for k in SCHEMA[s])
        errors.append(f"{where}: not a scannable key (expected one of: {keys})")
        return
    if dotted == "training.methods":
        errors.append(f"{where}: the methods are compared in every scan point already; scan their settings instead")
        return
    for i, value in enumerate(values):
        sub: list[str] = []
        _validate(value, SCHEMA[first][rest], f"{where}[{i}]", sub)
        errors.extend(sub)


#: Keys under ``generation`` that hold paths: relative ones are taken from the parameter file's folder, so
#: a parameter set and its event files travel together (to a workflow step, to REANA).
PATH_KEYS = ("madgraph.mg_dir", "madgraph.cards", "madgraph.delphes", "madgraph.delphes_card")
#: The keys of a ``generation.events`` entry that hold paths (all of them must exist).
EVENT_FILE_KEYS = ("path", "delphes")


def _resolve_paths(p: dict, base: Path, errors: list[str]) -> None:
    """Make path keys absolute; every listed event file must exist now, before any work starts."""
    gen = p["generation"]
    for dotted in PATH_KEYS:
        parent, _, key = dotted.partition(".")
        node = gen.get(parent)
        if node and node.get(key):
            node[key] = str((base / Path(node[key]).expanduser()).resolve())
    for i, entry in enumerate(gen.get("events", [])):
        for key in EVENT_FILE_KEYS:
            if entry.get(key) is None:
                continue
            entry[key] = str((base / Path(entry[key]).expanduser()).resolve())
            if not Path(entry[key]).is_file():
                errors.append(
                    f"generation.events[{i}].{key}: no such file {entry[key]} "
                    f"(relative paths are taken from the parameter file's folder {base})"
                )


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line: where (line and column of the file) and what, instead of PyYAML's multi-line report about
    a ``<unicode string>``."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}not valid YAML: {problem}" + (f" ({context})" if context else "")


def load_params(path: str | Path) -> dict:
    """Read and validate a parameter file; raise :class:`ParamsError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ParamsError(f"{path}: cannot read ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: {_yaml_problem(err)}") from None
    if data is None:
        raise ParamsError(f"{path}: the file is empty (expected a mapping of sections: {', '.join(SCHEMA)})")
    errors: list[str] = []
    if isinstance(data, dict):
        for name, default in OPTIONAL_SECTIONS.items():
            data.setdefault(name, copy.deepcopy(default))
    _validate(data, SCHEMA, "", errors)
    if not errors:
        _cross_checks(data, errors)
    if not errors:
        _resolve_paths(data, path.resolve().parent, errors)
    if errors:
        raise ParamsError("\n".join(f"{path}: {e}" for e in errors))
    _fill_defaults(data)
    return data


def _fill_defaults(p: dict) -> None:
    for dotted, default in KEY_DEFAULTS.items():
        *parents, last = dotted.split(".")
        node = p
        for part in parents:
            node = node[part]
        if node.get(last) is None:
            node[last] = copy.deepcopy(default)


def section(params: dict, dotted: str) -> Any:
    node = params
    for part in dotted.split("."):
        node = node[part]
    return node


def params_hash(params: dict, sections: tuple[str, ...], extra: dict | None = None) -> str:
    """Hash of the given sections (and step-specific values): equal hashes mean equal inputs."""
    payload = {s: section(params, s) for s in sections}
    if extra:
        payload["__extra__"] = extra
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def with_overrides(params: dict, overrides: dict[str, Any]) -> dict:
    """A copy with dotted keys replaced (used by tests and scans)."""
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[last] = value
    return out
