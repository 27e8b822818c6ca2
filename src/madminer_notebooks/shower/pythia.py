"""Pythia 8 on an LHE file: parton shower, multiple interactions (optional), hadronisation and decays of
each event, in the file's order, with every showered event placed at its event of the file.

Pythia reads the LHE file itself (``Beams:frameType = 4``). An event whose shower or hadronisation fails
is lost (Pythia moves on to the next event of the file), so the showered events are matched to the file's
events by the longitudinal momentum of the first outgoing particle of the hard process, which Pythia
copies from the file; the weights of every benchmark then come from the file for exactly the events that
survived. Pythia never changes them: :func:`shower_file` can also return Pythia's own reading of them, and
a test checks the two agree.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Pythia's seed range is 1..900 000 000.
MAX_SEED = 900_000_000

#: Consecutive failed events after which the file is taken to be unreadable for Pythia.
MAX_FAILURES_IN_A_ROW = 100

#: Neutrinos: final-state particles that no detector sees.
INVISIBLE = (12, 14, 16)


@dataclass(frozen=True)
class ShowerSettings:
    """What the shower and the reconstruction are run with (``analysis.shower`` of the parameters)."""

    mpi: bool = True  # multiple parton interactions (the underlying event); off: about 7 times faster
    jet_radius: float = 0.4
    jet_pt_min: float = 20.0  # GeV, after the detector's energy smearing
    jet_eta_max: float = 4.5

    @classmethod
    def from_params(cls, analysis: dict) -> ShowerSettings:
        given = analysis.get("shower") or {}
        return cls(**{k: given[k] for k in ("mpi", "jet_radius", "jet_pt_min", "jet_eta_max") if k in given})


def pythia_settings(path: Path, seed: int, mpi: bool) -> list[str]:
    """Pythia's settings for one LHE file. ``SpaceShower:dipoleRecoil`` is on because in VBF the default
    global recoil of initial-state radiation spoils the colour-singlet exchange between the two quark lines
    (Pythia's manual recommends it for VBF and VBS); the rest silences Pythia's banners and counters."""
    if not 1 <= seed <= MAX_SEED:
        raise ValueError(f"Pythia's seed must lie in 1..{MAX_SEED}, not {seed}")
    return [
        "Beams:frameType = 4",
        f"Beams:LHEF = {path}",
        f"PartonLevel:MPI = {'on' if mpi else 'off'}",
        "SpaceShower:dipoleRecoil = on",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        "Print:quiet = on",
        "SLHA:verbose = 0",
    ]


@dataclass
class ShoweredChunk:
    """Showered events of a run of consecutive file events."""

    index: np.ndarray  # (n,) 0-based position in the file of each showered event
    counts: np.ndarray  # (n,) final-state particles per event
    px: np.ndarray  # flat over the events' particles
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    pdgid: np.ndarray
    pythia_weights: dict[str, np.ndarray]  # Pythia's reading of the named weights, when asked for

    @functools.cached_property
    def event(self) -> np.ndarray:
        """The event (0-based, within the chunk) of each flat particle."""
        return np.repeat(np.arange(len(self.counts)), self.counts)


class _Pythia:
    """One Pythia instance reading one LHE file, yielding (hard-process key, final-state particles)."""

    def __init__(self, path: Path, seed: int, mpi: bool, weight_names: tuple[str, ...] = ()):
        import pythia8mc

        self.pythia = pythia8mc.Pythia("", False)  # no banner
        for line in pythia_settings(path, seed, mpi):
            if not self.pythia.readString(line):
                raise RuntimeError(f"Pythia refused the setting {line!r}")
        if not self.pythia.init():
            raise RuntimeError(f"{path}: Pythia could not initialise from this LHE file")
        self.weight_names = weight_names
        self.failed = 0
        self.path = path

    def events(self) -> Iterator[tuple[float, tuple[np.ndarray, ...], tuple[float, ...]]]:
        in_a_row = 0
        while True:
            if not self.pythia.next():
                if self.pythia.infoPython().atEndOfFile():  # (infoPython() is a snapshot: ask it anew)
                    return
                self.failed += 1
                in_a_row += 1
                if in_a_row > MAX_FAILURES_IN_A_ROW:
                    raise RuntimeError(f"{self.path}: Pythia failed on {in_a_row} events in a row")
                continue
            in_a_row = 0
            process = self.pythia.process
            key = next(process[i].pz() for i in range(process.size()) if process[i].status() > 0)
            rows = [(p.px(), p.py(), p.pz(), p.e(), p.id()) for p in self.pythia.event if p.isFinal()]
            columns = tuple(np.array(c) for c in zip(*rows, strict=True))
            info = self.pythia.infoPython() if self.weight_names else None
            weights = tuple(info.getWeightsDetailedValue(n) for n in self.weight_names) if info else ()
            yield key, columns, weights

    def close(self) -> None:
        if self.failed:
            log.info("%s: Pythia lost %d events (shower or hadronisation failed)", self.path.name, self.failed)


def shower_file(
    path: Path,
    keys: Iterator[np.ndarray],
    seed: int,
    mpi: bool = True,
    weight_names: tuple[str, ...] = (),
) -> Iterator[ShoweredChunk]:
    """Shower the events of ``path``; ``keys`` gives, chunk by chunk of the file's events, the longitudinal
    momentum of each event's first outgoing (status 1) particle. Yields one :class:`ShoweredChunk` per
    chunk of keys, holding the events of that chunk that survived the shower."""
    pythia = _Pythia(path, seed, mpi, weight_names)
    events = pythia.events()
    pending = None
    offset = 0
    try:
        for key in keys:
            kept: list[int] = []
            parts: list[tuple[np.ndarray, ...]] = []
            weights: list[tuple[float, ...]] = []
            i = 0
            while i < len(key):
                if pending is None:
                    pending = next(events, None)
                    if pending is None:
                        break  # Pythia reached the end of the file
                target, columns, w = pending
                j = i + int(np.argmax(np.isclose(key[i:], target, rtol=1e-9, atol=1e-9)))
                if not np.isclose(key[j], target, rtol=1e-9, atol=1e-9):
                    break  # the event lies in a later chunk: the rest of this one was lost
                kept.append(offset + j)
                parts.append(columns)
                weights.append(w)
                pending = None
                i = j + 1
            offset += len(key)
            yield _chunk(kept, parts, weights, weight_names)
        if pending is not None or next(events, None) is not None:
            raise RuntimeError(f"{path}: Pythia showered an event that is not in the file's event list")
    finally:
        pythia.close()


def _chunk(kept: list[int], parts: list, weights: list, weight_names: tuple[str, ...]) -> ShoweredChunk:
    counts = np.array([len(p[0]) for p in parts], dtype=np.int64)

    def flat(k: int, dtype=float) -> np.ndarray:
        return np.concatenate([p[k] for p in parts]).astype(dtype) if parts else np.zeros(0, dtype)

    w = np.array(weights, dtype=float).reshape(len(kept), len(weight_names))
    return ShoweredChunk(
        index=np.array(kept, dtype=np.int64),
        counts=counts,
        px=flat(0),
        py=flat(1),
        pz=flat(2),
        e=flat(3),
        pdgid=flat(4, np.int64),
        pythia_weights={name: w[:, k] for k, name in enumerate(weight_names)},
    )
