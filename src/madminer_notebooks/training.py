"""MadMiner's trainers fed from whole tensors in memory (``training.trainer: columnar``, the default).

MadMiner's ``Trainer`` wraps the training arrays in a ``NumpyDataset`` and a torch ``DataLoader`` that
indexes it one sample at a time and collates every batch from single rows: on quick's 100k ALICES samples
that is about half of each epoch, for a network of 100 x 100 units. Here the trainers are MadMiner's own
classes (``SingleParameterizedRatioTrainer``, ``LocalScoreTrainer``) with two methods replaced:
``make_dataset`` keeps each array as one tensor, and ``make_dataloaders`` returns :class:`Batches`, which
slice those tensors with a shuffled index. Everything else (the epoch loop, forward pass, losses, optimiser,
learning-rate schedule, validation split, early stopping, the saved files) is MadMiner's, except for three
per-batch costs that change no number:

- the validation step skips the autograd records only a weight update would use (``batch_val``);
- MadMiner's stopwatch (``_timer``: a clock read and dictionary updates around every step, about 5% of a
  SALLY epoch, reported only as an INFO log line at the end) is off;
- its NaN checks (``_check_for_nans``, one ``isnan().any()`` per tensor and batch, up to ten per ALICES
  batch) become one check of the training arrays, whole, before the first epoch, and one of the batch's
  losses before the weight update. A NaN in a network output reaches the losses (every output enters a
  mean), so training still ends at the same batch, before the update, with MadMiner's message; NaN in the
  training arrays is an error naming the array (MadMiner would stop in the first batch and save an
  untrained network).

The batches are the ones MadMiner's loaders would give, in the same order, because they draw from torch's
and numpy's global generators exactly what the loaders draw: numpy shuffles the list of indices once for the
validation split, and each epoch's iteration takes one int64 from torch for the loader's base seed, then
either a ``randperm`` of the subset (``SubsetRandomSampler``) or a seed for a private generator and its
``randperm`` (``RandomSampler``). So the same seed gives the same loss curves either way, to the last bit
(``tests/test_training.py``). Arrays MadMiner has memory-mapped (files larger than its
``memmap_threshold``) stay with MadMiner's dataset, which reads them from disk batch by batch.

:func:`use` installs one trainer or the other behind the estimators' ``train`` calls; ``begin`` calls it with
the parameter file's ``training.trainer``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from . import threads
from .params import TRAINERS

log = logging.getLogger(__name__)


class Tensors:
    """The training arrays as whole tensors (what ``NumpyDataset`` holds, without its per-sample access)."""

    def __init__(self, arrays: Sequence[np.ndarray], dtype: torch.dtype):
        self.tensors = tuple(torch.from_numpy(np.asarray(a)).to(dtype) for a in arrays)
        lengths = {len(t) for t in self.tensors}
        if len(lengths) != 1:
            raise ValueError(f"training arrays of different lengths: {sorted(lengths)}")
        self.n = lengths.pop()

    def __len__(self) -> int:
        return self.n


class Batches:
    """One loader's batches: ``DataLoader(dataset, batch_size, sampler=SubsetRandomSampler(indices))`` when
    ``indices`` is given, else ``DataLoader(dataset, batch_size, shuffle=True)``, drawing the same random
    numbers in the same order (see the module's docstring)."""

    def __init__(self, data: Tensors, batch_size: int, indices: Sequence[int] | None = None):
        self.data = data
        self.batch_size = batch_size
        self.indices = None if indices is None else torch.as_tensor(np.asarray(indices, dtype=np.int64))
        self.n = data.n if indices is None else len(indices)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def order(self) -> torch.Tensor:
        """This epoch's order of the samples."""
        torch.empty((), dtype=torch.int64).random_()  # the base seed every DataLoader iterator draws
        if self.indices is not None:  # SubsetRandomSampler: a permutation from the global generator
            return self.indices[torch.randperm(self.n)]
        seed = int(torch.empty((), dtype=torch.int64).random_().item())  # RandomSampler: its own generator
        generator = torch.Generator()
        generator.manual_seed(seed)
        return torch.randperm(self.n, generator=generator)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = self.order()
        shuffled = [t[order] for t in self.data.tensors]  # one gather per epoch; the batches are views
        for start in range(0, self.n, self.batch_size):
            yield tuple(t[start : start + self.batch_size] for t in shuffled)


#: The labels of MadMiner's per-batch NaN checks of the training arrays, which :class:`Columnar` does once.
_DATA_CHECKS = frozenset({"Training data", "Augmented training data"})
#: The labels of its checks of the network's outputs, which the check of the losses covers.
_OUTPUT_CHECKS = frozenset({"Model output", "Model score"})
#: Both: the per-batch checks a trainer with every array checked whole skips.
_SKIPPED_CHECKS = _DATA_CHECKS | _OUTPUT_CHECKS


class Columnar:
    """Mixin for a MadMiner trainer: whole tensors and :class:`Batches` instead of its dataset and loaders,
    a validation step that records no graph for the weights, NaN checks once instead of per tensor and
    batch, and no stopwatch (see the module's docstring)."""

    #: Whether every training array was checked whole: None before the first, False once one was not
    #: (memory-mapped arrays stay with MadMiner's dataset, and then MadMiner checks every batch).
    _checked_whole: bool | None = None

    def make_dataset(self, data):
        if any(isinstance(value, np.memmap) for value in data.values()):
            log.info("training data are memory-mapped: MadMiner's per-sample dataset reads them")
            self._checked_whole = False
            return super().make_dataset(data)
        tensors = Tensors(list(data.values()), self.dtype)
        for name, tensor in zip(data, tensors.tensors, strict=True):
            if torch.isnan(tensor).any():
                rows = int(torch.isnan(tensor).reshape(len(tensor), -1).any(dim=1).sum())
                raise ValueError(f"the training array {name!r} has NaN in {rows} of its {len(tensor)} rows")
        if self._checked_whole is None:
            self._checked_whole = True
        return list(data), tensors

    def _check_for_nans(self, label, *tensors):
        if self._checked_whole and label in _SKIPPED_CHECKS:
            return
        if label == "Loss" and not any(t is not None and math.isnan(t.item()) for t in tensors):
            return
        super()._check_for_nans(label, *tensors)  # logs MadMiner's warning and raises its NanException

    def _timer(self, start=None, stop=None):
        """MadMiner's stopwatch, off (see the module's docstring)."""

    def _report_timer(self):
        """Nothing timed, nothing to report."""

    def make_dataloaders(self, dataset, dataset_val, validation_split, batch_size):
        if not isinstance(dataset, Tensors) or not (dataset_val is None or isinstance(dataset_val, Tensors)):
            return super().make_dataloaders(dataset, dataset_val, validation_split, batch_size)
        if dataset_val is not None:
            return Batches(dataset, batch_size), Batches(dataset_val, batch_size)
        if validation_split is None or validation_split <= 0.0:
            return Batches(dataset, batch_size), None
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must lie between 0 and 1, got {validation_split}")
        indices = list(range(len(dataset)))  # a list, shuffled by numpy as MadMiner shuffles it
        split = int(np.floor(validation_split * len(dataset)))
        np.random.shuffle(indices)
        return Batches(dataset, batch_size, indices[split:]), Batches(dataset, batch_size, indices[:split])

    def epoch(self, *args, **kwargs):
        """MadMiner's epoch, with the cores this execution may use now (:mod:`.threads`): a training left
        running alone takes the cores another one has freed."""
        threads.follow()
        return super().epoch(*args, **kwargs)

    def batch_val(self, batch_data, loss_functions, loss_weights):
        """MadMiner's validation step without recording what only the weights' gradients need (it never
        steps on them): under ``no_grad``, or, where the loss needs the model's score d log r / d theta
        (ALICES), with the weights frozen so that autograd follows theta alone. The numbers are the same."""
        if not getattr(self, "calculate_model_score", False):
            with torch.no_grad():
                return super().batch_val(batch_data, loss_functions, loss_weights)
        weights = [p for p in self.model.parameters() if p.requires_grad]
        for p in weights:
            p.requires_grad_(False)
        try:
            return super().batch_val(batch_data, loss_functions, loss_weights)
        finally:
            for p in weights:
                p.requires_grad_(True)


def _columnar_classes() -> dict[str, type]:
    from madminer.utils.ml import trainer

    return {
        name: type(name, (Columnar, getattr(trainer, name)), {"__doc__": f"MadMiner's {name}, fed from whole tensors."})
        for name in ("SingleParameterizedRatioTrainer", "DoubleParameterizedRatioTrainer", "LocalScoreTrainer")
    }


#: Where each estimator looks its trainer up: (module, name).
_SITES = (
    ("madminer.ml.parameterized_ratio", "SingleParameterizedRatioTrainer"),
    ("madminer.ml.double_parameterized_ratio", "DoubleParameterizedRatioTrainer"),
    ("madminer.ml.score", "LocalScoreTrainer"),
)
_CLASSES: dict[str, type] = {}


def use(trainer: str) -> None:
    """Make MadMiner's estimators train with ``trainer`` (one of :data:`TRAINERS`) from now on."""
    import importlib

    from madminer.utils.ml import trainer as madminer_trainer

    if trainer not in TRAINERS:
        raise ValueError(f"unknown trainer {trainer!r} (trainers: {', '.join(TRAINERS)})")
    if not _CLASSES:
        _CLASSES.update(_columnar_classes())
    for module_name, name in _SITES:
        module = importlib.import_module(module_name)
        setattr(module, name, _CLASSES[name] if trainer == "columnar" else getattr(madminer_trainer, name))
    log.debug("MadMiner's estimators train with the %s trainer", trainer)
