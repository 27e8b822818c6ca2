"""Benchmarks of a MadMiner setup file, translated into EWdim6 card values.

The generator takes its physics points from the same HDF5 file that MadMiner's ``MadMiner.save``
writes, so that the weights in the LHE file are named, ordered and valued exactly as MadMiner expects.
h5py is used directly (importing MadMiner would pull in torch and cost seconds per job).
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .constants import LHA_BLOCK, LHA_ID_CPWL2, LHA_ID_CWL2


class SetupError(ValueError):
    """The setup file cannot be used by this generator."""


_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def evaluate_transform(expression: str, theta: float) -> float:
    """Evaluate a MadMiner ``param_card_transform`` such as ``'16.52*theta'`` without ``eval``.

    Only numbers, ``theta`` and + - * / ** are allowed; an empty transform is the identity.
    """
    text = expression.strip()
    if text in ("", "None"):
        return float(theta)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise SetupError(f"param_card_transform {expression!r} is not an arithmetic expression in theta") from err

    def visit(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id == "theta":
            return float(theta)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](visit(node.left), visit(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](visit(node.operand))
        raise SetupError(f"param_card_transform {expression!r}: only numbers, theta and + - * / ** are allowed")

    return visit(tree)


@dataclass(frozen=True)
class Parameter:
    name: str
    lha_block: str
    lha_id: int
    transform: str

    @property
    def operator(self) -> str:
        """Which EWdim6 coefficient this parameter sets: 'CWL2' or 'CPWL2'."""
        if self.lha_block.lower() == LHA_BLOCK and self.lha_id == LHA_ID_CWL2:
            return "CWL2"
        if self.lha_block.lower() == LHA_BLOCK and self.lha_id == LHA_ID_CPWL2:
            return "CPWL2"
        raise SetupError(
            f"parameter {self.name!r} sets LHA block {self.lha_block!r} id {self.lha_id}; the built-in generator "
            f"implements only block {LHA_BLOCK} ids {LHA_ID_CWL2} (CWL2) and {LHA_ID_CPWL2} (CPWL2)"
        )

    def card_value(self, theta: float) -> float:
        return evaluate_transform(self.transform, theta)


@dataclass(frozen=True)
class Benchmark:
    name: str
    theta: tuple[float, ...]
    cwl2: float  # card values in TeV^-2
    cpwl2: float


@dataclass(frozen=True)
class Setup:
    path: Path
    parameters: tuple[Parameter, ...]
    benchmarks: tuple[Benchmark, ...]

    def benchmark(self, name: str) -> Benchmark:
        for b in self.benchmarks:
            if b.name == name:
                return b
        known = ", ".join(b.name for b in self.benchmarks)
        raise SetupError(f"benchmark {name!r} is not in setup {self.path} (it has: {known})")

    @property
    def card_values(self) -> np.ndarray:
        """(n_benchmarks, 2) array of (CWL2, CPWL2) card values."""
        return np.array([[b.cwl2, b.cpwl2] for b in self.benchmarks])


_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


def _strings(values: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def load_setup(path: str | Path) -> Setup:
    """Read parameters and (non-nuisance) benchmarks from a MadMiner setup file and check them."""
    path = Path(path)
    if not path.is_file():
        raise SetupError(f"setup file {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            names = _strings(f["parameters/names"][()])
            blocks = _strings(f["parameters/lha_blocks"][()])
            ids = [int(i) for i in f["parameters/lha_ids"][()]]
            transforms = _strings(f["parameters/transforms"][()])
            bench_names = _strings(f["benchmarks/names"][()])
            bench_values = np.atleast_2d(f["benchmarks/values"][()])
            nuisance = (
                [bool(v) for v in f["benchmarks/is_nuisance"][()]]
                if "benchmarks/is_nuisance" in f
                else [False] * len(bench_names)
            )
    except KeyError as err:
        raise SetupError(f"setup file {path} lacks {err.args[0]}: is it a MadMiner setup file?") from err
    except OSError as err:
        raise SetupError(f"setup file {path} is not a readable HDF5 file: {err}") from err

    parameters = tuple(Parameter(n, b, i, t) for n, b, i, t in zip(names, blocks, ids, transforms, strict=True))
    operators = [p.operator for p in parameters]  # raises for unknown LHA entries
    if len(set(operators)) != len(operators):
        raise SetupError(f"setup file {path}: two parameters set the same coefficient ({operators})")
    for p in parameters:
        # Weights are exactly quadratic in the card values; MadMiner's morphing needs them quadratic in theta.
        f0, f1, f2 = (p.card_value(t) for t in (0.0, 1.0, 2.0))
        if abs(f2 - 2 * f1 + f0) > 1e-9 * max(1.0, abs(f1), abs(f2)):
            raise SetupError(
                f"setup file {path}: param_card_transform {p.transform!r} of {p.name} is not linear in theta, "
                "so the weights would not be quadratic in theta and MadMiner's morphing would not close"
            )
    if not bench_names:
        raise SetupError(f"setup file {path} has no benchmarks")
    for name in bench_names:
        # Names become XML attribute values (<wgt id='NAME'>) and MadMiner's weight keys.
        if not _NAME.fullmatch(name):
            raise SetupError(f"setup file {path}: benchmark name {name!r} must use only letters, digits and _ . + -")

    benchmarks = []
    for name, values, is_nuisance in zip(bench_names, bench_values, nuisance, strict=True):
        if is_nuisance:
            continue
        card = {"CWL2": 0.0, "CPWL2": 0.0}
        for p, theta in zip(parameters, values, strict=True):
            card[p.operator] = p.card_value(float(theta))
        benchmarks.append(Benchmark(name, tuple(float(v) for v in values), card["CWL2"], card["CPWL2"]))
    return Setup(path, parameters, tuple(benchmarks))
