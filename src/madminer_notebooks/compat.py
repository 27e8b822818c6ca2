"""Narrow fixes that make MadMiner 0.9.6 work, and work fast, on today's numpy.

Each fix replaces one name inside MadMiner (a module-level name of one module; for 5 and 7, one method of a
class), so nothing else in the process changes; :func:`apply` is idempotent and the tests check both the
behaviour and the output: identical, or for the network evaluations (4, 7) equal to float32 rounding.

1. ``np.histogramdd(..., normed=False)`` in ``madminer.utils.histo`` and ``madminer.likelihood.histo``:
   numpy >= 1.24 removed ``normed``, which breaks ``AsymptoticLimits`` in the ``histo`` and ``sally``
   modes. Those two modules get a numpy proxy whose ``histogramdd`` maps ``normed`` to ``density``.
2. ``madminer.utils.interfaces.lhe._get_objects`` searches the PDG table twice per event (about 90% of
   LHE reading time). The two searches return constants; they are computed once.
3. ``madminer.utils.interfaces.delphes_root`` reads Delphes ROOT files with ``uproot3``/``awkward0``, which
   fail on numpy 2 (integer overflow in the file-header cursor, "Unable to avoid copy" in the arrays).
   That module uses exactly two calls, ``uproot3.open(path)["Delphes"]`` and ``tree.array(branch)``; it
   gets a stand-in for ``uproot3`` that answers them with uproot 5. Nothing else uses uproot3.
4. ``madminer.utils.ml.eval.evaluate_ratio_model`` builds every input tensor row by row (``torch.stack(
   [tensor(row) for row in x])``): two ``torch.tensor`` calls per event and parameter point, 0.46 s per
   parameter point for 27k events (the network itself takes 0.016 s), which made a limit scan of a ratio
   estimator take many minutes. ``madminer.ml.parameterized_ratio`` gets a version whose plain path (no
   score, no x gradients: the one limits use) runs the same model on whole arrays, with the fastest tanh
   (:mod:`.network_eval`: ``torch.tanh`` took two thirds of the network's time); the other paths call
   MadMiner's function. ``madminer.ml.score`` gets the same for ``evaluate_local_score_model`` (SALLY's
   score, 27k events: 0.15 s of row-by-row tensors per call, a limit scan makes about forty calls), and
   remembers the last few scores by the content of the network and of the events: an evaluation
   notebook asks for the same score about thirty times (``_ScoreMemo``).
5. ``Trainer.check_early_stopping`` keeps the best epoch's weights as ``self.model.state_dict()``: tensors
   that share memory with the parameters, which the optimiser then updates in place, so "restoring the best
   epoch" at the end restored the last epoch's weights. The fix keeps a copy of them (the loss curves are
   unchanged; the model saved is the one of the lowest validation loss, as MadMiner's documentation says).
6. ``madminer.utils.interfaces.hdf5._load_samples`` reads a file's whole event table (observations,
   weights, sampling ids) every time anything asks for events: ``SampleAugmenter`` does it three times per
   parameter point it samples, ``AsymptoticLimits`` several times per limit, ``FisherInformation`` per
   call. The table is read once per file version (path, size and modification time). Each caller gets its
   own copy of the weights, which MadMiner scales in place in many places; the observations and sampling
   ids, which it only reads, are shared and read-only (a write would raise, never corrupt). The output is
   identical.
7. ``ParameterizedRatioEstimator.evaluate_log_likelihood_ratio(x, theta, test_all_combinations=True)``
   calls the network once per parameter point on all events. Its plain path (no score) evaluates every
   event at every point in cache-sized blocks with the events' part of the first layer computed once
   (:func:`.network_eval.ratio_all_combinations`): quick's ALICE scan (677 points, 27k held-out events)
   takes 6.3 s on one core, 22 s one call per point with ``torch.tanh``, about 190 s with MadMiner's own
   row-by-row path (``benchmarks/results/evaluation_speed.md``). Log r agrees with MadMiner's to float32
   rounding (tested to 1e-5).
8. ``DataAnalyzer.event_loader`` (behind every ``SampleAugmenter``, ``AsymptoticLimits`` and
   ``FisherInformation`` pass over the events) selects the events of the benchmark closest to the point
   and rescales the rest anew on every pass, and formats its debug message with an f-string (numpy's
   array printing) whether or not debug logging is on. ``SampleAugmenter`` makes three passes per
   parameter point: quick's 300 theta0 took 3,600 passes, 10 of the 17 s of its ratio sampling. The
   batches of a pass (the same batches, cut the same way) are kept per file version and arguments, within
   :data:`EVENT_BATCH_CACHE_BYTES`; each pass gets its own copy of the weights (MadMiner scales them in
   place), the observations and sampling ids are shared read-only. The samples are identical, to the bit
   (tested; ``benchmarks/sampling_speed.py`` measures it against MadMiner's own path).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import os
from types import ModuleType
from typing import Any

import numpy as np

from . import network_eval

log = logging.getLogger(__name__)
_APPLIED = False

#: The most memory fix 8 keeps event batches in (a pass larger than this is not kept: MadMiner's own
#: streaming then serves it, as it would without the fix).
EVENT_BATCH_CACHE_BYTES = 512 * 1024**2

#: How many (network, events) scores fix 4 remembers: an ensemble's members on the held-out events, with room
SCORE_MEMO_ENTRIES = 16


class _NumpyWithNormed:
    """numpy, except that ``histogramdd`` also accepts the removed ``normed`` keyword."""

    def __init__(self, numpy: ModuleType):
        self._np = numpy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._np, name)

    def histogramdd(self, *args: Any, normed: bool | None = None, **kwargs: Any):
        if normed is not None:
            if "density" in kwargs:
                raise TypeError("histogramdd got both normed and density")
            kwargs["density"] = normed
        return self._np.histogramdd(*args, **kwargs)


class _CachedParticleTable:
    """Stands in for ``particle.Particle`` inside MadMiner's LHE module: ``findall`` with a filter that
    has no free variables (the lambdas MadMiner passes) is answered once and then from a cache."""

    def __init__(self, particle_cls: type):
        self._cls = particle_cls
        self._cache: dict[Any, list] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cls, name)

    def findall(self, filter_fn=None, *args: Any, **kwargs: Any) -> list:
        code = getattr(filter_fn, "__code__", None)
        if code is None or filter_fn.__closure__ or args or kwargs:
            return self._cls.findall(filter_fn, *args, **kwargs)
        if code not in self._cache:
            self._cache[code] = list(self._cls.findall(filter_fn))
        return list(self._cache[code])


def _fast_ratio_model(original: Any) -> Any:
    """``evaluate_ratio_model`` whose plain path (no score, no x gradients: what limits use) runs the model
    on whole arrays (:mod:`.network_eval`); everything else goes to MadMiner's own function."""
    from madminer.utils.ml.models.ratio import DenseSingleParameterizedRatioModel

    @functools.wraps(original)
    def evaluate(model, method_type=None, theta0s=None, theta1s=None, xs=None, evaluate_score=False,
                 run_on_gpu=True, double_precision=False, return_grad_x=False):  # fmt: skip
        layers = network_eval.plain_layers(model, DenseSingleParameterizedRatioModel)
        if (evaluate_score or return_grad_x or method_type != "parameterized_ratio" or theta1s is not None
                or double_precision or layers is None):  # fmt: skip
            return original(model, method_type, theta0s, theta1s, xs, evaluate_score, run_on_gpu,
                            double_precision, return_grad_x)  # fmt: skip
        xs = np.asarray(xs)
        theta0s = np.asarray(theta0s, dtype=np.float64)
        rows = theta0s[np.arange(len(xs)) % len(theta0s)]  # MadMiner's theta0s[i % n_thetas], at once
        model.eval()
        log_r_hat = network_eval.ratio_rows(model.float(), layers, rows, xs)
        return 1.0 / (1.0 + np.exp(log_r_hat)), log_r_hat, None, None

    return evaluate


def _all_combinations_ratio(original: Any) -> Any:
    """``ParameterizedRatioEstimator.evaluate_log_likelihood_ratio`` whose plain all-combinations path (the
    one limits and closure checks use) evaluates every event at every point in blocks, the events' part of
    the first layer once (:func:`.network_eval.ratio_all_combinations`), instead of one call per point."""
    from madminer.utils.ml.models.ratio import DenseSingleParameterizedRatioModel
    from madminer.utils.various import load_and_check

    @functools.wraps(original)
    def evaluate(self, x, theta, test_all_combinations=True, evaluate_score=False):
        layers = network_eval.plain_layers(self.model, DenseSingleParameterizedRatioModel)
        if not test_all_combinations or evaluate_score or layers is None:
            return original(self, x, theta, test_all_combinations, evaluate_score)
        x = self._transform_inputs(load_and_check(x))
        theta = self._transform_parameters(load_and_check(theta))
        if self.features is not None:
            x = x[:, self.features]
        self.model.eval()
        log_r_hat = network_eval.ratio_all_combinations(self.model.float(), layers, np.asarray(theta), x)
        return log_r_hat, np.array([None] * len(theta))  # MadMiner's t_hat without a score: None per point

    evaluate.mmnb_fix = True
    return evaluate


def _copying_early_stopping(original: Any) -> Any:
    """``check_early_stopping`` that keeps a copy of the best epoch's weights, not a view of the live ones."""

    @functools.wraps(original)
    def check(self, best_loss, best_model, best_epoch, loss, i_epoch, early_stopping_patience=None):
        improved = best_loss is None or loss < best_loss
        best_loss, best_model, best_epoch = original(
            self, best_loss, best_model, best_epoch, loss, i_epoch, early_stopping_patience
        )
        if improved:
            best_model = copy.deepcopy(best_model)
        return best_loss, best_model, best_epoch

    check.mmnb_fix = True
    return check


class _SampleTableCache:
    """``_load_samples`` answered from memory while the file is unchanged: the last few files' tables."""

    def __init__(self, original: Any, files: int = 2):
        self._original = original
        self._files = files
        self._tables: dict[tuple, tuple[np.ndarray, ...]] = {}
        functools.update_wrapper(self, original)

    def __call__(self, file_name: str) -> tuple[np.ndarray, ...]:
        key = _file_version(file_name)
        table = self._tables.pop(key, None)
        if table is None:
            table = tuple(self._original(file_name))
            for array in table:
                array.setflags(write=False)
            while len(self._tables) >= self._files:
                self._tables.pop(next(iter(self._tables)))
        self._tables[key] = table  # the most recently used last
        observations, weights, sampling_ids = table
        return observations, weights.copy(), sampling_ids


def _file_version(file_name: str) -> tuple:
    """What identifies one version of a file: a rewritten file (the driver renames a new one in) differs."""
    stat = os.stat(file_name)
    return os.path.realpath(file_name), stat.st_size, stat.st_mtime_ns, stat.st_ino


class _EventBatchCache:
    """``DataAnalyzer.event_loader`` answered from memory for a pass it has served before (fix 8)."""

    def __init__(self, original: Any, limit: int = EVENT_BATCH_CACHE_BYTES):
        self._original = original
        self._limit = limit
        self._passes: dict[tuple, list[tuple[np.ndarray, ...]]] = {}
        functools.update_wrapper(self, original)

    def __get__(self, analyzer: Any, owner: type) -> Any:  # a method of each analyzer, like the original
        return self if analyzer is None else functools.partial(self.__call__, analyzer)

    def _key(self, analyzer, start, end, batch_size, include_nuisance_parameters, generated_close_to, ids) -> tuple:
        if include_nuisance_parameters is None:
            include_nuisance_parameters = analyzer.include_nuisance_parameters
        closest = analyzer._find_closest_benchmark(generated_close_to)  # all that the point decides
        return (_file_version(analyzer.madminer_filename), start, end, batch_size, bool(include_nuisance_parameters),
                None if closest is None else int(closest), bool(ids))  # fmt: skip

    def __call__(self, analyzer, start=0, end=None, batch_size=100000, include_nuisance_parameters=None,
                 generated_close_to=None, return_sampling_ids=False):  # fmt: skip
        args = (start, end, batch_size, include_nuisance_parameters, generated_close_to, return_sampling_ids)
        key = self._key(analyzer, *args)
        batches = self._passes.pop(key, None)
        if batches is None:
            return self._first_pass(key, self._original(analyzer, *args))
        self._passes[key] = batches  # the most recently used last
        return self._copies(batches)

    def _first_pass(self, key: tuple, batches: Any):
        """MadMiner's pass, batch by batch, keeping what it yields unless it outgrows the limit."""
        kept: list[tuple[np.ndarray, ...]] | None = []
        size = 0
        for observations, weights, *ids in batches:
            if kept is not None:
                size += sum(a.nbytes for a in (observations, weights, *ids) if a is not None)
                if size > self._limit:
                    kept = None  # too large to keep: this pass streams, as without the fix
                else:
                    for array in (observations, *ids):
                        if array is not None:
                            array.setflags(write=False)
                    kept.append((observations, weights.copy(), *ids))  # before the caller scales it
            yield (observations, weights, *ids)
        if kept is None:
            return
        while self._passes and size + self._size() > self._limit:
            self._passes.pop(next(iter(self._passes)))  # the least recently used first
        self._passes[key] = kept

    def _size(self) -> int:
        return sum(a.nbytes for batches in self._passes.values() for b in batches for a in b if a is not None)

    @staticmethod
    def _copies(batches: list[tuple[np.ndarray, ...]]):
        for observations, weights, *ids in batches:
            yield (observations, weights.copy(), *ids)


class _ScoreMemo:
    """SALLY's score of the last few (network, events) pairs, keyed by their content: one evaluation
    notebook asks for the same network on the same held-out events in every ``expected_limits`` call
    (twice: the Asimov data and the histograms), in the closure check and in ``full_information``, each
    time from a freshly loaded estimator. A digest of the weights and of the inputs is what makes two asks
    the same, so a retrained network or other events are never served an old score."""

    def __init__(self, size: int = SCORE_MEMO_ENTRIES):
        self._size = size
        self._scores: dict[bytes, np.ndarray] = {}

    def clear(self) -> None:
        """Forget every score (for benchmarks that time a cold evaluation)."""
        self._scores.clear()

    @staticmethod
    def key(layers: list[Any], activation: Any, x: np.ndarray) -> bytes:
        """A digest of the weights, the activation function evaluated with and the events."""
        digest = hashlib.blake2b(digest_size=20)
        for layer in layers:
            for tensor in (layer.weight, layer.bias):
                if tensor is not None:
                    digest.update(tensor.detach().numpy().tobytes())
        name = f"{getattr(activation, '__module__', '')}.{getattr(activation, '__qualname__', activation)}"
        digest.update(repr((name, x.shape, x.dtype.str)).encode())
        digest.update(np.ascontiguousarray(x).data)
        return digest.digest()

    def score(self, model: Any, layers: list[Any], x: np.ndarray) -> np.ndarray:
        key = self.key(layers, network_eval.activation_of(model), x)
        score = self._scores.pop(key, None)
        if score is None:
            score = network_eval.local_score(model, layers, x)
            score.setflags(write=False)
        self._scores[key] = score  # the most recently used last
        while len(self._scores) > self._size:
            self._scores.pop(next(iter(self._scores)))
        return score.copy()  # the caller's to change


#: the scores fix 4 remembers, one memo per process
SCORE_MEMO = _ScoreMemo()


def _fast_score_model(original: Any) -> Any:
    """``evaluate_local_score_model`` that runs the model on one array (:mod:`.network_eval`), remembering
    the last scores (:class:`_ScoreMemo`); with x gradients, double precision or a model it does not cover,
    MadMiner's own."""
    from madminer.utils.ml.models.score import DenseLocalScoreModel

    @functools.wraps(original)
    def evaluate(model, xs=None, run_on_gpu=True, double_precision=False, return_grad_x=False):
        layers = network_eval.plain_layers(model, DenseLocalScoreModel)
        if return_grad_x or double_precision or layers is None:
            return original(model, xs, run_on_gpu, double_precision, return_grad_x)
        model.eval()
        return SCORE_MEMO.score(model.float(), layers, np.asarray(xs))

    return evaluate


class _DelphesTree:
    """The one method of an uproot3 tree that MadMiner's Delphes parser calls, answered by uproot 5."""

    def __init__(self, tree: Any, path: str):
        self._tree = tree
        self._path = path

    def array(self, branch: str) -> np.ndarray:
        """Per-event values of ``branch``: an array of per-event arrays (uproot3's jagged-array indexing).

        A missing branch raises ``KeyError`` as uproot3 did, which MadMiner relies on (optional b- and
        tau-tags, the ``Weight`` branch)."""
        if branch not in self._tree:
            raise KeyError(f"{self._path}: the Delphes tree has no branch {branch!r}")
        if branch == "Event":  # MadMiner only counts the entries of the event branch
            return np.arange(self._tree.num_entries)
        values = self._tree[branch].array(library="np")
        if values.dtype == object and len(values) and len({len(v) for v in values}) == 1:
            return np.stack(values)  # equal multiplicities: what np.array() of an uproot3 jagged array gave
        return values


class _DelphesFile:
    def __init__(self, path: str):
        import uproot

        self._path = str(path)
        self._file = uproot.open(self._path)

    def __getitem__(self, name: str) -> _DelphesTree:
        return _DelphesTree(self._file[name], self._path)


class _Uproot3ForDelphes:
    """Stands in for the ``uproot3`` module inside ``madminer.utils.interfaces.delphes_root``."""

    @staticmethod
    def open(path: str) -> _DelphesFile:
        return _DelphesFile(path)


def apply() -> None:
    """Apply all fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    import madminer.likelihood.histo as likelihood_histo
    import madminer.ml.parameterized_ratio as parameterized_ratio
    import madminer.ml.score as score
    import madminer.utils.histo as utils_histo
    import madminer.utils.interfaces.delphes_root as delphes_root
    import madminer.utils.interfaces.hdf5 as hdf5
    import madminer.utils.interfaces.lhe as lhe
    from madminer.analysis.dataanalyzer import DataAnalyzer
    from madminer.utils.ml.trainer import Trainer

    for module in (utils_histo, likelihood_histo):
        module.np = _NumpyWithNormed(np)
    lhe.Particle = _CachedParticleTable(lhe.Particle)
    lhe.get_elementary_pdg_ids = functools.lru_cache(maxsize=None)(lhe.get_elementary_pdg_ids)
    delphes_root.uproot3 = _Uproot3ForDelphes()
    parameterized_ratio.evaluate_ratio_model = _fast_ratio_model(parameterized_ratio.evaluate_ratio_model)
    score.evaluate_local_score_model = _fast_score_model(score.evaluate_local_score_model)
    ratio_estimator = parameterized_ratio.ParameterizedRatioEstimator
    if not getattr(ratio_estimator.evaluate_log_likelihood_ratio, "mmnb_fix", False):
        ratio_estimator.evaluate_log_likelihood_ratio = _all_combinations_ratio(
            ratio_estimator.evaluate_log_likelihood_ratio
        )
    hdf5._load_samples = _SampleTableCache(hdf5._load_samples)
    if not isinstance(DataAnalyzer.__dict__["event_loader"], _EventBatchCache):
        DataAnalyzer.event_loader = _EventBatchCache(DataAnalyzer.event_loader)
    if not getattr(Trainer.check_early_stopping, "mmnb_fix", False):
        Trainer.check_early_stopping = _copying_early_stopping(Trainer.check_early_stopping)
    _APPLIED = True
    log.debug("MadMiner compatibility fixes applied")


def analyse_samples(reader, description: str) -> None:
    """``LHEReader.analyse_samples`` (or ``DelphesReader.analyse_delphes_samples``) with a clear error when no
    event passes the cuts (MadMiner logs a warning and then fails with 'not enough values to unpack')."""
    analyse = getattr(reader, "analyse_samples", None) or reader.analyse_delphes_samples
    try:
        analyse()
    except ValueError as err:
        if "not enough values to unpack" in str(err):
            raise RuntimeError(f"no event of {description} passed the observables' requirements and cuts") from err
        raise
    if reader.observations is None or len(next(iter(reader.observations.values()))) == 0:
        raise RuntimeError(f"no event of {description} passed the observables' requirements and cuts")
