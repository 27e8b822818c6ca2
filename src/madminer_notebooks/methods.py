"""The inference methods and the baselines they are compared with: one table that the parameter schema,
the chain, the evaluation and plotting notebooks, the quality numbers and the tracking all read.

Adding a method is one entry here plus its cell in the training notebook (how MadMiner trains it); its
kind decides everything else: which samples it trains on, how its model is saved, which limit mode of
MadMiner's ``AsymptoticLimits`` evaluates it, which closure check it gets and which Fisher information the
plots compare it with. MadMiner keeps its own method taxonomy in one place (``madminer.ml``); this is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The kinds: a baseline needs no training; a local score estimator (SALLY) learns t(x|theta_SM) and is
#: an ensemble; a parameterised ratio estimator (ALICE, ALICES) learns r(x|theta) as a function of theta.
BASELINE = "baseline"
LOCAL_SCORE = "local score"
PARAMETERISED_RATIO = "parameterised ratio"

#: The sample set each trained kind learns from (``RunPaths.SAMPLE_SETS``).
TRAINING_SAMPLE = {LOCAL_SCORE: "train_local", PARAMETERISED_RATIO: "train_ratio"}

#: The closure check of each trained kind (:mod:`madminer_notebooks.inference.closure`).
CLOSURE = {LOCAL_SCORE: "score", PARAMETERISED_RATIO: "ratio"}


@dataclass(frozen=True)
class Method:
    """One way of setting limits, and everything the chain needs to know about it."""

    name: str  # as in training.methods and the run folder's file names
    label: str  # in plots and tables
    color: str  # matplotlib colour, the same in every plot
    kind: str  # BASELINE, LOCAL_SCORE or PARAMETERISED_RATIO
    limit_mode: str  # the ``mode`` of MadMiner's AsymptoticLimits.expected_limits
    fisher_key: str | None = None  # its Fisher information in fisher_information.json, if it has one
    training_keys: tuple[str, ...] = ()  # training.* settings only this method reads (shown in run names)

    @property
    def trained(self) -> bool:
        return self.kind != BASELINE

    @property
    def training_sample(self) -> str | None:
        return TRAINING_SAMPLE.get(self.kind)

    @property
    def closure(self) -> str | None:
        return CLOSURE.get(self.kind)

    @property
    def ensemble(self) -> bool:
        """SALLY trains ``training.ensemble`` estimators, whose spread is the error of its Fisher information."""
        return self.kind == LOCAL_SCORE


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("rate", "rate only", "0.55", BASELINE, "rate", fisher_key="rate"),
        Method("histo", "histogram", "tab:green", BASELINE, "histo", fisher_key="histo_2d"),
        # sallino: per theta, a 1D histogram of the score projected on theta's direction (inference.sallino);
        # it keeps what SALLY's Fisher information promises, where an 8 x 8 histogram of the 2D score does not
        Method("sally", "SALLY", "tab:blue", LOCAL_SCORE, "sallino", fisher_key="sally"),
        Method("alice", "ALICE", "tab:red", PARAMETERISED_RATIO, "ml"),
        Method("alices", "ALICES", "tab:purple", PARAMETERISED_RATIO, "ml", training_keys=("alpha",)),
    )
}


def method(name: str) -> Method:
    """The table's entry for ``name``; an unknown name is an error that lists the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r} (methods: {', '.join(METHODS)})") from None


def trained_methods() -> tuple[str, ...]:
    """What ``training.methods`` may list."""
    return tuple(name for name, m in METHODS.items() if m.trained)


def baselines() -> tuple[str, ...]:
    """Limit-setting runs without training, evaluated in every run."""
    return tuple(name for name, m in METHODS.items() if not m.trained)


def style(name: str) -> dict[str, str]:
    """Colour and label of a method in plots (black and its own name for anything not in the table)."""
    m = METHODS.get(name)
    return {"color": m.color, "label": m.label} if m else {"color": "k", "label": name}
