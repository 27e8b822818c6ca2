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


#: Events per ``Pythia.nextBatch`` call. Each batch holds whole event records in an awkward array (about
#: 100 kB per event with MPI on) until its final-state particles are read out.
BATCH_EVENTS = 500


@dataclass
class _Batch:
    """Showered events of one ``nextBatch`` call, the failed ones dropped, in the file's order."""

    keys: np.ndarray  # (n,) pz of each event's first outgoing particle of the hard process
    starts: np.ndarray  # (n + 1,) each event's first particle in the flat columns, and the end
    columns: tuple[np.ndarray, ...]  # px, py, pz, e, pdgid of the final-state particles, flat
    weights: np.ndarray  # (n, len(weight_names)) Pythia's reading of the named weights


class _Pythia:
    """One Pythia instance reading one LHE file, yielding its showered events batch by batch.

    ``nextBatch`` runs Pythia and fills an awkward array of the event records in C++; the final-state
    particles are then selected and flattened column by column. (Reading them particle by particle through
    the Python bindings cost more than the shower itself with MPI off.)"""

    def __init__(self, path: Path, seed: int, mpi: bool, weight_names: tuple[str, ...] = ()):
        import pythia8mc

        self.pythia = pythia8mc.Pythia("", False)  # no banner
        for line in pythia_settings(path, seed, mpi):
            if not self.pythia.readString(line):
                raise RuntimeError(f"Pythia refused the setting {line!r}")
        if not self.pythia.init():
            raise RuntimeError(f"{path}: Pythia could not initialise from this LHE file")
        self.weight_names = weight_names
        self.weight_columns: list[int] | None = None
        self.failed = 0
        self.path = path

    def batches(self) -> Iterator[_Batch]:
        import awkward as ak

        in_a_row = 0
        size = 1  # the first batch: one event, after which Pythia knows the file's weight names
        while True:
            events = self.pythia.nextBatch(size, "none")  # a failed event is None; so are reads past the end
            at_end = self.pythia.infoPython().atEndOfFile()  # (infoPython() is a snapshot: ask it anew)
            missing = ak.to_numpy(ak.is_none(events))
            # the attempts after the last event are no failures
            failed = missing[: len(missing) - _trailing(missing)] if at_end else missing
            for lost in failed:
                in_a_row = in_a_row + 1 if lost else 0
                if in_a_row > MAX_FAILURES_IN_A_ROW:
                    raise RuntimeError(f"{self.path}: Pythia failed on {in_a_row} events in a row")
            self.failed += int(failed.sum())
            shown = ak.drop_none(events)
            if len(shown):
                if self.weight_columns is None:
                    self.weight_columns = self._weight_columns()
                yield self._read_out(shown)
            if at_end:
                return
            size = BATCH_EVENTS

    def _weight_columns(self) -> list[int]:
        names = list(self.pythia.infoPython().weightNameVector())
        missing = [n for n in self.weight_names if n not in names]
        if missing:
            raise RuntimeError(f"{self.path}: Pythia has no weight named {', '.join(missing)} (it has {names})")
        return [names.index(n) for n in self.weight_names]

    def _read_out(self, events) -> _Batch:
        import awkward as ak

        status = events.prt.status
        # the hard process is copied into the event record in the file's order, its outgoing particles with
        # status +-23: the first of them is the file event's first outgoing particle
        keys = ak.to_numpy(ak.fill_none(ak.firsts(events.prt.p.pz[abs(status) == 23]), np.nan))
        final = events.prt[status > 0]
        counts = ak.to_numpy(ak.num(final))
        columns = tuple(
            ak.to_numpy(ak.flatten(c)).astype(dtype)
            for c, dtype in ((final.p.px, float), (final.p.py, float), (final.p.pz, float), (final.p.e, float),
                             (final.id, np.int64))
        )  # fmt: skip
        return _Batch(
            keys=keys,
            starts=np.concatenate([[0], np.cumsum(counts)]),
            columns=columns,
            weights=ak.to_numpy(events.info.weights)[:, self.weight_columns]
            if self.weight_names
            else np.zeros((len(counts), 0)),
        )

    def close(self) -> None:
        if self.failed:
            log.info("%s: Pythia lost %d events (shower or hadronisation failed)", self.path.name, self.failed)


def _trailing(flags: np.ndarray) -> int:
    """How many of the last entries of a boolean array are true."""
    false = np.flatnonzero(~flags)
    return len(flags) - (false[-1] + 1 if len(false) else 0)


def _same(a: float, b: float) -> bool:
    """``np.isclose(a, b, rtol=1e-9, atol=1e-9)`` for two floats (the key comparison, once per event)."""
    return abs(a - b) <= 1e-9 + 1e-9 * abs(b)


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
    batches = pythia.batches()
    batch: _Batch | None = None
    at = 0  # the next showered event of ``batch``
    offset = 0
    try:
        for key in keys:
            file_keys = key.tolist()
            kept: list[int] = []
            segments: list[tuple[_Batch, int, int]] = []  # (batch, first, end) of the events taken
            i = 0
            while i < len(file_keys):
                if batch is None or at == len(batch.keys):
                    batch, at = next(batches, None), 0
                    if batch is None:
                        break  # Pythia reached the end of the file
                target = float(batch.keys[at])
                j = i
                while j < len(file_keys) and not _same(file_keys[j], target):
                    j += 1  # file events Pythia lost
                if j == len(file_keys):
                    break  # the event lies in a later chunk: the rest of this one was lost
                kept.append(offset + j)
                if segments and segments[-1][0] is batch and segments[-1][2] == at:
                    segments[-1] = (batch, segments[-1][1], at + 1)
                else:
                    segments.append((batch, at, at + 1))
                at += 1
                i = j + 1
            offset += len(file_keys)
            yield _chunk(kept, segments, weight_names)
        if (batch is not None and at < len(batch.keys)) or next(batches, None) is not None:
            raise RuntimeError(f"{path}: Pythia showered an event that is not in the file's event list")
    finally:
        pythia.close()


def _chunk(kept: list[int], segments: list[tuple[_Batch, int, int]], weight_names: tuple[str, ...]) -> ShoweredChunk:
    counts = [np.diff(b.starts[lo : hi + 1]) for b, lo, hi in segments]

    def flat(k: int, dtype=float) -> np.ndarray:
        parts = [b.columns[k][b.starts[lo] : b.starts[hi]] for b, lo, hi in segments]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    w = (np.concatenate([b.weights[lo:hi] for b, lo, hi in segments]) if segments
         else np.zeros((0, len(weight_names))))  # fmt: skip
    return ShoweredChunk(
        index=np.array(kept, dtype=np.int64),
        counts=np.concatenate(counts).astype(np.int64) if counts else np.zeros(0, np.int64),
        px=flat(0),
        py=flat(1),
        pz=flat(2),
        e=flat(3),
        pdgid=flat(4, np.int64),
        pythia_weights={name: w[:, k] for k, name in enumerate(weight_names)},
    )
