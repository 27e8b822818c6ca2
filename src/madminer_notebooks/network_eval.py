"""MadMiner's dense networks evaluated without gradients, as whole arrays and with the fastest tanh.

What limits, closure checks and Fisher information ask of a trained estimator is its plain output on many
events at many parameter points: for a ratio estimator on quick's sizes, 27k held-out events at about 700
points of a scan, 19M rows through a 100 x 100 tanh network per method. On one core most of that went into
``torch.tanh``: 2.5 ns per element on one machine, where numpy's vectorised ``tanh`` (AVX-512) took 0.4 ns;
4.1 ns on another without AVX-512, where numpy's took 4.9 ns and ``2 sigmoid(2x) - 1`` by torch 1.5 ns. Which
is fastest depends on the processor, so :func:`fastest_tanh` measures the two candidates once per process
(a few milliseconds) and keeps the faster; both agree with ``torch.tanh`` to 2e-7
(``benchmarks/evaluation_speed.py`` measures the paths side by side). Two more things are spent once instead
of per point: the events' part of the first layer, ``W_x x + b``, is the same at every parameter point (the
network's input is ``(theta, x)``), and the inputs are scaled once.

The functions here take MadMiner's models as they are (``layers``, ``activation``) and compute what their
``forward`` computes, in the same float32 arithmetic; only the order of a sum in the first layer and the
tanh's last bit differ (tested against MadMiner's own evaluation to 1e-5 in log r). Anything they do not
cover (dropout layers, a GPU, gradients) is left to MadMiner: :func:`plain_layers` says when they apply.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

import numpy as np
import torch

log = logging.getLogger(__name__)

#: rows of (event, parameter point) pushed through the network at once: 3 MB of float32 activations for
#: 100 hidden units, which stay in the core's cache between layers (measured on quick's ALICE scan, one core:
#: 2.0 s per 225 points at 8192 rows, 3.3 s at 131072)
BLOCK_ROWS = 1 << 13


def _numpy_tanh(t: torch.Tensor) -> torch.Tensor:
    """tanh in place, by numpy (the tensor is a fresh intermediate of a no-gradient forward pass)."""
    array = t.numpy()
    np.tanh(array, out=array)
    return t


def _sigmoid_tanh(t: torch.Tensor) -> torch.Tensor:
    """tanh in place as ``2 sigmoid(2x) - 1`` (torch's sigmoid is vectorised where its tanh is not)."""
    t.mul_(2.0)
    torch.sigmoid(t, out=t)
    return t.mul_(2.0).sub_(1.0)


#: The candidates :func:`fastest_tanh` chooses from (each in place on a fresh float32 intermediate).
TANH_CANDIDATES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "numpy tanh": _numpy_tanh,
    "2 sigmoid(2x) - 1": _sigmoid_tanh,
}


@functools.cache
def fastest_tanh() -> Callable[[torch.Tensor], torch.Tensor]:
    """The faster candidate on this processor, measured once per process on one block of activations
    (the best of three tries each)."""
    block = torch.from_numpy(np.random.default_rng(0).normal(size=(BLOCK_ROWS, 100)).astype(np.float32))
    seconds = {}
    for name, tanh in TANH_CANDIDATES.items():
        tries = []
        for _ in range(3):
            work = block.clone()
            start = time.perf_counter()
            tanh(work)
            tries.append(time.perf_counter() - start)
        seconds[name] = min(tries)
    best = min(seconds, key=seconds.get)
    log.debug("tanh for network evaluation: %s (%s)", best, {k: f"{v * 1e3:.2f} ms" for k, v in seconds.items()})
    return TANH_CANDIDATES[best]


def activation_of(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's activation for a no-gradient pass on the CPU: the fastest tanh for MadMiner's ``tanh``
    (``torch.tanh``), the model's own function otherwise."""
    return fastest_tanh() if model.activation is torch.tanh else model.activation


def plain_layers(model: torch.nn.Module, kind: type) -> list[torch.nn.Linear] | None:
    """The model's layers if it is exactly MadMiner's ``kind`` (``DenseSingleParameterizedRatioModel`` or
    ``DenseLocalScoreModel``, whose forward pass :func:`forward` computes; the morphing-aware models compute
    something else) as a plain stack of linear layers evaluated on the CPU (no dropout; MadMiner would run it
    on a GPU when one is there), else None."""
    if type(model) is not kind or torch.cuda.is_available():
        return None
    layers = list(model.layers)
    if not layers or not all(type(layer) is torch.nn.Linear for layer in layers):
        return None
    return layers


def forward(layers: list[torch.nn.Linear], activation: Callable, h: torch.Tensor, first: int = 0) -> torch.Tensor:
    """MadMiner's dense forward pass from layer ``first`` on: the activation before every layer but the
    network's first."""
    for i, layer in enumerate(layers[first:], start=first):
        if i > 0:
            h = activation(h)
        h = layer(h)
    return h


def local_score(model: torch.nn.Module, layers: list[torch.nn.Linear], x: np.ndarray) -> np.ndarray:
    """``DenseLocalScoreModel(x)``: SALLY's estimated score of every event, shape (n_events, n_parameters)."""
    with torch.no_grad():
        h = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return forward(layers, activation_of(model), h).numpy()


def ratio_rows(model: torch.nn.Module, layers: list[torch.nn.Linear], theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``DenseSingleParameterizedRatioModel(theta_i, x_i)``'s log r of each row, shape (n_rows,)."""
    with torch.no_grad():
        inputs = np.hstack([np.asarray(theta, dtype=np.float32), np.asarray(x, dtype=np.float32)])
        return forward(layers, activation_of(model), torch.from_numpy(inputs)).numpy()[:, 0]


def ratio_all_combinations(
    model: torch.nn.Module, layers: list[torch.nn.Linear], thetas: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """log r of every event at every parameter point, shape (n_thetas, n_events): what MadMiner's
    ``evaluate_log_likelihood_ratio(x, theta, test_all_combinations=True)`` computes one point at a time.

    The first layer is split, ``W [theta, x] + b = (W_x x + b) + W_theta theta``: the events' part once,
    each point's part once, and blocks of ``BLOCK_ROWS`` rows (events of one point, or several points of
    a small event set) through the rest of the network."""
    n_parameters = thetas.shape[1]
    first = layers[0]
    activation = activation_of(model)
    with torch.no_grad():
        x_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        theta_t = torch.from_numpy(np.ascontiguousarray(thetas, dtype=np.float32))
        events = torch.addmm(first.bias, x_t, first.weight[:, n_parameters:].T)  # (n_events, hidden)
        points = theta_t @ first.weight[:, :n_parameters].T  # (n_thetas, hidden)
        out = np.empty((len(thetas), len(x)), dtype=np.float32)
        chunk = min(len(x), BLOCK_ROWS)  # events per block
        step = max(1, BLOCK_ROWS // max(1, chunk))  # points per block
        for e0 in range(0, len(x), chunk):
            part = events[e0 : e0 + chunk]
            for t0 in range(0, len(thetas), step):
                h = part.unsqueeze(0) + points[t0 : t0 + step].unsqueeze(1)  # (points, events, hidden)
                h = forward(layers, activation, h.reshape(-1, h.shape[-1]), first=1)
                out[t0 : t0 + step, e0 : e0 + chunk] = h.reshape(-1, len(part)).numpy()
    return out
