"""``ColumnarLHEReader``: MadMiner's ``LHEReader`` with the per-event parsing replaced by column operations.

It *is* an ``LHEReader`` (a subclass): ``add_sample``, ``set_smearing``, ``add_observable``, ``add_cut``,
``add_efficiency``, ``analyse_samples`` and ``save`` are MadMiner's, and so are the merging of samples, the
weight normalisation and the HDF5 file. Only the reading of one LHE file (MadMiner's ``parse_lhe_file``) is
done here, about a hundred times faster (see ``benchmarks/analysis_speed.py``), with the same results:

- the same events pass, in the same order, with the same weights at every benchmark (bit for bit) and the
  same observable values (to round-off: the same ``vector`` formulas over arrays instead of objects);
- the same rules for a failed observable (default value or NaN; a required one drops the event, with
  MadMiner's quirk that a later failing optional observable resets the verdict), for cuts (a cut that cannot
  be evaluated passes only if it is "required") and efficiencies;
- the same smearing model, drawn from numpy's global generator (distributions equal, values not).

Where it would differ, it does not try: observables given as Python functions, systematics, an energy
derived from pT and mass, and expressions outside the column subset (:mod:`.expressions`) go through
MadMiner's own parser for that file, with the reason logged (``reader.fallbacks`` keeps them). Mistakes
that MadMiner would turn into NaN for every event or into an ``UnboundLocalError`` (a syntax error, an
unknown name or property) are errors here, naming the file and the observable, before anything is written.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from madminer.lhe import LHEReader
from tqdm import tqdm

from ..lhe_file import LHEFormatError, read_run_card
from ..notebook_output import progress_stream
from .expressions import (
    MATH_NAMES,
    Col,
    CompiledExpression,
    ExpressionError,
    MathDomainError,
    NotVectorisable,
    compile_expression,
)
from .lhe_columns import EventChunk, iter_chunks
from .objects import COLLECTIONS, GLOBALS, build_namespace

log = logging.getLogger(__name__)

_NAMES = set(COLLECTIONS) | {"met"} | set(GLOBALS) | set(MATH_NAMES)


class AnalysisError(ValueError):
    """An observable, cut or efficiency cannot be evaluated; the message names it and the file."""


class ColumnarLHEReader(LHEReader):
    """MadMiner's ``LHEReader``, reading each LHE file in columns (see the module's docstring)."""

    def __init__(self, filename: str, chunk_bytes: int = 8 << 20, progress: bool = False):
        super().__init__(filename)
        self.chunk_bytes = chunk_bytes
        self.progress = progress  # a progress bar of the events read, per file
        self.fallbacks: list[tuple[str, str]] = []  # (file, reason) of files read by MadMiner's own parser

    @classmethod
    def without_setup(cls) -> ColumnarLHEReader:
        """A reader that reads no MadMiner setup file, to check observables and cuts (``check_expressions``)
        before the chain has one. It cannot analyse samples (it knows no benchmarks)."""
        from unittest import mock

        no_settings = (None, OrderedDict(), *([None] * 5), OrderedDict(), *([None] * 6))
        with mock.patch("madminer.lhe.lhe_reader.load_madminer_settings", return_value=no_settings):
            return cls("<no setup file>")

    # --- MadMiner's API, with the expression checked first ----------------------------------------------

    def add_observable(self, name, definition, required=False, default=None):
        if isinstance(definition, str):
            self._check_syntax("observable", name, definition)
        super().add_observable(name, definition, required=required, default=default)

    def add_cut(self, definition, required=False):
        self._check_syntax("cut", definition, definition)
        super().add_cut(definition, required=required)

    @staticmethod
    def _check_syntax(kind: str, name: str, source: str) -> None:
        """A syntax error names the observable (MadMiner raises a bare SyntaxError)."""
        try:
            compile(source.strip(), "<expression>", "eval")
        except SyntaxError as err:
            where = f" at column {err.offset}" if err.offset else ""
            raise AnalysisError(f"{kind} {name!r} = {source!r}: syntax error{where}: {err.msg}") from None

    # --- what can be done in columns -------------------------------------------------------------------

    def _compiled(self) -> tuple[list, list, list]:
        """Observables, cuts and efficiencies compiled; raises NotVectorisable or AnalysisError."""
        observables = []
        for name, obs in self.observables.items():
            if not isinstance(obs.val_expression, str):
                raise NotVectorisable(f"observable {name!r} is a Python function")
            observables.append((name, self._compile("observable", name, obs.val_expression, _NAMES), obs))
        with_obs = _NAMES | set(self.observables)
        cuts = [(c, self._compile("cut", c.val_expression, c.val_expression, with_obs)) for c in self.cuts]
        effs = [
            (e, self._compile("efficiency", e.val_expression, e.val_expression, with_obs)) for e in self.efficiencies
        ]
        return observables, cuts, effs

    @staticmethod
    def _compile(kind: str, name: str, source: str, names: set[str]) -> CompiledExpression:
        try:
            return compile_expression(source, names, set(COLLECTIONS))
        except ExpressionError as err:
            raise AnalysisError(f"{kind} {name!r} = {source!r}: {err}") from None

    def _columnar_plan(self, sample_syst_names: Any) -> tuple[tuple | None, str | None]:
        """(compiled observables, cuts and efficiencies, None), or (None, the reason MadMiner's parser must
        read the file)."""
        if sample_syst_names:
            return None, "systematics (nuisance weights) are read by MadMiner's parser"
        if any(None in r for pid, r in self.energy_resolution.items() if pid != "met"):
            return None, "an energy derived from pT and mass (energy_resolution None) keeps MadMiner's own particles"
        try:
            return self._compiled(), None
        except NotVectorisable as err:
            return None, str(err)

    def check_expressions(self) -> None:
        """Compile every observable, cut and efficiency and evaluate them on a synthetic event with two jets and
        two photons, so that a typo fails before any file is read (AnalysisError naming it)."""
        try:
            observables, cuts, effs = self._compiled()
        except NotVectorisable:
            return  # MadMiner's path will read these; it checks nothing up front
        chunk = synthetic_chunk()
        self._evaluate_chunk(chunk, observables, cuts, effs, Path("<synthetic event>"))

    # --- MadMiner's hook --------------------------------------------------------------------------------

    def _parse_sample(self, *args):
        """MadMiner's per-file hook, called as ``(is_background, k_factor, lhe_file, parse_events_as_xml,
        reference_benchmark, sampling_benchmark, sample_syst_names)``."""
        is_background, k_factor, lhe_file, _, _, sampling_benchmark, sample_syst_names = args
        compiled, reason = self._columnar_plan(sample_syst_names)
        if compiled is None:
            log.warning("%s: read by MadMiner's per-event LHE parser, because %s", lhe_file, reason)
            self.fallbacks.append((str(lhe_file), reason))
            return super()._parse_sample(*args)
        observations, weights = self._parse_file(Path(lhe_file), compiled, sampling_benchmark, is_background, k_factor)
        if observations is None:
            log.warning("No remaining events in this LHE file, skipping it")
            return None, None, 0
        return observations, weights, len(next(iter(weights.values())))

    # --- the columnar parse ---------------------------------------------------------------------------

    def _parse_file(
        self, path: Path, compiled: tuple, sampling_benchmark: str, is_background: bool, k_factor: float | None
    ):
        card = read_run_card(path)
        k_factor = 1.0 if k_factor is None else k_factor
        if card.norm_is_average is None:
            log.warning("%s: no event_norm in the run card; weights are taken as they are", path)
        elif card.norm_is_average and card.nevents is None:
            raise LHEFormatError(f"{path}: event_norm = average, but the run card has no nevents")
        observables, cuts, effs = compiled
        obs_parts: list[np.ndarray] = []
        weight_parts: list[np.ndarray] = []
        weight_names: list[str] | None = None
        stats = _Stats(len(cuts), len(effs))
        n_read = 0
        total = int(card.nevents) if card.nevents else None
        bar = tqdm(total=total, unit="ev", desc=path.name, file=progress_stream(), disable=not self.progress,
                   mininterval=0.5)  # fmt: skip
        for chunk in self._chunks(path, sampling_benchmark):
            if weight_names is None:
                weight_names = list(chunk.weights)
            elif list(chunk.weights) != weight_names:
                raise LHEFormatError(
                    f"{path}: events from {chunk.first_event} on carry the weights {list(chunk.weights)}, earlier"
                    f" ones {weight_names}"
                )
            values, selected, efficiency = self._evaluate_chunk(chunk, observables, cuts, effs, path, stats)
            w = np.column_stack([chunk.weights[k] for k in weight_names])
            stats.negative += int((w < 0).any(axis=1).sum())
            w = w * efficiency[:, None]
            obs_parts.append(values[selected])
            weight_parts.append(w[selected])
            n_read += chunk.n
            bar.update(chunk.n)
            if not self.progress and n_read // 100_000 != (n_read - chunk.n) // 100_000:
                log.info("  Processing event %d/%s", n_read, int(card.nevents) if card.nevents else "?")
        bar.close()
        stats.report(self.cuts, self.efficiencies)
        observations = np.concatenate(obs_parts) if obs_parts else np.zeros((0, len(observables)))
        if len(observations) == 0:
            log.warning("  No observations remaining!")
            return None, None
        if card.norm_is_average:
            k_factor = k_factor / self._normalising_events(path, int(card.nevents), n_read)
        weights = k_factor * np.concatenate(weight_parts)
        by_name = OrderedDict((name, weights[:, i]) for i, name in enumerate(weight_names))
        out_weights = OrderedDict()
        for benchmark in self.benchmark_names_phys:
            key = sampling_benchmark if is_background else benchmark
            if key not in by_name:
                raise LHEFormatError(
                    f"{path}: no weight for benchmark {benchmark!r} (the events carry {list(by_name)}); MadGraph names"
                    f" them so with 'launch --rwgt_name={benchmark}'"
                )
            out_weights[benchmark] = by_name[key]
        out_obs = OrderedDict((name, observations[:, i]) for i, (name, _, _) in enumerate(observables))
        return out_obs, out_weights

    def _normalising_events(self, path: Path, nevents: int, n_read: int) -> int:
        """The number of events that the file's cross section is shared among with ``event_norm = average``:
        the run card's ``nevents``, as MadMiner takes it."""
        return nevents

    def _chunks(self, path: Path, sampling_benchmark: str) -> Iterator[EventChunk]:
        """The events of one file, chunk by chunk, as the observables see them (here: its particles)."""
        return iter_chunks(path, sampling_benchmark, self.chunk_bytes)

    def _evaluate_chunk(self, chunk: EventChunk, observables, cuts, effs, path: Path, stats: _Stats | None = None):
        """(observable values (n, n_obs), selected events, efficiency per event) of one chunk."""
        needed = set().union(*(x[1].names for x in (*observables, *cuts, *effs)))
        namespace = build_namespace(chunk, self._resolutions(), self.pt_resolution.get("met"), needed)
        namespace.update(MATH_NAMES)
        n = chunk.n
        values = np.empty((n, len(observables)))
        passed = np.ones(n, dtype=bool)
        for i, (name, expr, obs) in enumerate(observables):
            what = f"observable {name!r} = {obs.val_expression!r}"
            col = self._evaluate(expr, namespace, n, path, chunk, what)
            default = obs.val_default if obs.val_default is not None else np.nan
            values[:, i] = np.where(col.ok, col.v, default)
            passed = np.where(col.ok, passed, not obs.is_required)  # MadMiner: the last failure decides
            namespace[name] = Col(values[:, i], np.ones(n, dtype=bool))  # cuts see observables by name
        cuts_pass = np.ones(n, dtype=bool)
        for j, (cut, expr) in enumerate(cuts):
            col = self._evaluate(expr, namespace, n, path, chunk, f"cut {cut.val_expression!r}")
            this = np.where(col.ok, np.asarray(col.v).astype(bool), bool(cut.is_required))
            cuts_pass &= this
            if stats is not None:
                stats.cut_pass[j] += int((this & passed).sum())
                stats.cut_fail[j] += int((~this & passed).sum())
        efficiency = np.ones(n)
        effs_pass = np.ones(n, dtype=bool)
        considered = passed & cuts_pass
        for j, (eff, expr) in enumerate(effs):
            col = self._evaluate(expr, namespace, n, path, chunk, f"efficiency {eff.val_expression!r}")
            value = np.where(col.ok, np.asarray(col.v, dtype=float), float(eff.val_default))
            ok = value > 0.0
            effs_pass &= ok
            efficiency = np.where(ok, efficiency * value, efficiency)
            if stats is not None:
                stats.eff_pass[j] += int((ok & considered).sum())
                stats.eff_fail[j] += int((~ok & considered).sum())
                stats.eff_sum[j] += float(np.where(ok & considered, value, 0.0).sum())
        selected = passed & cuts_pass & effs_pass
        efficiency = np.where(selected, efficiency, 1.0)
        return values, selected, efficiency

    @staticmethod
    def _evaluate(expr: CompiledExpression, namespace: dict, n: int, path: Path, chunk: EventChunk, what: str) -> Col:
        try:
            return expr.evaluate(namespace, n)
        except ExpressionError as err:
            raise AnalysisError(f"{path}: {what}: {err}") from None
        except MathDomainError as err:
            raise AnalysisError(f"{path}: event {chunk.first_event + err.index}: {what}: {err}") from None

    def _resolutions(self) -> dict[str, dict]:
        return {
            "energy": self.energy_resolution,
            "pt": self.pt_resolution,
            "eta": self.eta_resolution,
            "phi": self.phi_resolution,
        }


class _Stats:
    """MadMiner's end-of-file report: events passing each cut and efficiency, negative weights."""

    def __init__(self, n_cuts: int, n_effs: int):
        self.cut_pass = [0] * n_cuts
        self.cut_fail = [0] * n_cuts
        self.eff_pass = [0] * n_effs
        self.eff_fail = [0] * n_effs
        self.eff_sum = [0.0] * n_effs
        self.negative = 0

    def report(self, cuts: list, efficiencies: list) -> None:
        for p, f, cut in zip(self.cut_pass, self.cut_fail, cuts, strict=True):
            log.info("  %s / %s events pass cut %s", p, p + f, cut)
        for p, f, total, eff in zip(self.eff_pass, self.eff_fail, self.eff_sum, efficiencies, strict=True):
            log.info("  %s / %s events pass efficiency %s", p, p + f, eff)
            log.info("  average efficiency for %s is %s", eff, total / (p + f) if p + f else float("nan"))
        if self.negative:
            log.warning("  %s events contain negative weights", self.negative)


def synthetic_chunk() -> EventChunk:
    """One event with two jets and two photons (and the incoming partons), to try expressions on."""
    pdgid = np.array([[2, 1, 2, 1, 22, 22]])
    px = np.array([[0.0, 0.0, 40.0, -30.0, 50.0, -20.0]])
    py = np.array([[0.0, 0.0, 10.0, 25.0, -35.0, 15.0]])
    pz = np.array([[500.0, -300.0, 200.0, -150.0, 30.0, 40.0]])
    e = np.sqrt(px**2 + py**2 + pz**2)
    status = np.array([[-1, -1, 1, 1, 1, 1]])
    return EventChunk(
        first_event=1,
        weights={"sm": np.array([1.0])},
        pdgid=pdgid,
        px=px,
        py=py,
        pz=pz,
        e=e,
        spin=np.zeros((1, 6)),
        present=status == 1,
        globals={
            "n_particles": np.array([6.0]),
            "scale": np.array([125.0]),
            "alpha_qed": np.array([0.0078]),
            "alpha_qcd": np.array([0.12]),
        },
    )
