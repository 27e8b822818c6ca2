"""Anti-kT jets with FastJet, over many events in one call (FastJet's awkward-array interface clusters
each event in C++; a Python loop over events would cost more than the clustering)."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import awkward as ak
import numpy as np


@dataclass
class Jets:
    """Jets of consecutive events, flat, each event's jets in decreasing pT."""

    counts: np.ndarray  # (n_events,)
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)


_quiet = False


@contextlib.contextmanager
def _no_banner():
    """FastJet's C++ library prints a banner to the process's standard output at its first clustering;
    in a notebook that lands in the cell's output. The first call runs with file descriptor 1 on
    /dev/null."""
    global _quiet
    if _quiet:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
        _quiet = True


def antikt(counts: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray, radius: float,
           pt_min: float) -> Jets:  # fmt: skip
    """Anti-kT jets (E-scheme recombination) of each event's particles, given flat with ``counts`` per
    event; jets below ``pt_min`` GeV are dropped."""
    import fastjet

    particles = ak.unflatten(
        ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D"), np.asarray(counts, dtype=np.int64)
    )
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    with _no_banner():
        jets = fastjet.ClusterSequence(particles, definition).inclusive_jets(min_pt=pt_min)
    order = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False, stable=True)
    jets = jets[order]
    flat = {k: ak.to_numpy(ak.flatten(jets[k])).astype(float) for k in ("px", "py", "pz", "E")}
    return Jets(ak.to_numpy(ak.num(jets, axis=1)).astype(np.int64), flat["px"], flat["py"], flat["pz"], flat["E"])
