"""``ShowerLHEReader``: MadMiner's ``LHEReader`` (through the columnar reader) at shower level.

Each LHE file is showered and hadronised by Pythia 8, and its events reach the observables as the
reconstructed jets (``j``) and photons (``a``) of :mod:`.reconstruct`; observables, cuts, efficiencies,
the weights of every benchmark (those of the LHE file, for the events that survived the shower) and the
saved MadMiner file are the parton-level reader's. The detector model does the smearing, so MadMiner's
``set_smearing`` is refused here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from ..analysis.lhe_columns import EventChunk, iter_chunks
from ..analysis.reader import ColumnarLHEReader
from .pythia import MAX_SEED, shower_file
from .reconstruct import reconstruct
from .settings import ShowerSettings

log = logging.getLogger(__name__)

#: The HDF5 attribute of an analysed MadMiner file that says which level its observables are at.
LEVEL_ATTRIBUTE = "mmnb_analysis_level"


class ShowerLHEReader(ColumnarLHEReader):
    """The columnar reader over showered, reconstructed events (see the module's docstring)."""

    def __init__(self, filename: str, settings: ShowerSettings, seed: int, progress: bool = False,
                 chunk_bytes: int = 1 << 20):  # fmt: skip
        super().__init__(filename, chunk_bytes=chunk_bytes, progress=progress)
        self.settings = settings
        self.seed = seed
        self._files = 0

    def set_smearing(self, *args, **kwargs):
        raise ValueError("at shower level the detector model smears jets and photons; set_smearing is parton level")

    def _normalising_events(self, path: Path, nevents: int, n_read: int) -> int:
        """The events that came through the shower. Events Pythia loses (a failed hadronisation, say) are
        not in the sample; with the cross section shared among the survivors the file still carries its whole
        cross section (the losses are taken to be independent of the kinematics)."""
        if n_read < nevents:
            log.warning("%s: %d of %d events lost in the shower (%.2g%%); the weights of the others are scaled"
                        " by %.6g to keep the cross section", path, nevents - n_read, nevents,
                        100 * (nevents - n_read) / nevents, nevents / n_read)  # fmt: skip
        elif n_read > nevents:
            raise ValueError(f"{path}: {n_read} events showered, but the run card says nevents = {nevents}")
        return n_read

    def _chunks(self, path: Path, sampling_benchmark: str) -> Iterator[EventChunk]:
        seed = (self.seed + 7919 * self._files) % MAX_SEED + 1  # one stream per file of the reader
        self._files += 1
        rng = np.random.default_rng(seed)
        read: list[EventChunk] = []

        def keys() -> Iterator[np.ndarray]:
            for chunk in iter_chunks(path, sampling_benchmark, self.chunk_bytes):
                read.append(chunk)
                first = np.argmax(chunk.present, axis=1)  # each event's first outgoing (status 1) particle
                yield chunk.pz[np.arange(chunk.n), first]

        for showered in shower_file(path, keys(), seed, self.settings.mpi):
            yield reconstruct(read.pop(0), showered, self.settings, rng)


def record_level(path: Path, level: str, settings: ShowerSettings | None = None) -> None:
    """Write into an analysed MadMiner file which level its observables are at (and the shower settings)."""
    with h5py.File(path, "a") as f:
        f.attrs[LEVEL_ATTRIBUTE] = level
        if settings is not None:
            for name, value in vars(settings).items():
                f.attrs[f"mmnb_shower_{name}"] = value


def analysis_level(path: Path) -> str:
    """The level recorded by :func:`record_level` ('parton' for files written before it existed)."""
    with h5py.File(path, "r") as f:
        return str(f.attrs.get(LEVEL_ATTRIBUTE, "parton"))
