"""MadMiner's observable and cut strings, evaluated over all events of a chunk at once.

MadMiner ``eval``s each string once per event over Python lists of ``vector`` objects (``j`` jets, ``a``
photons, ...), and an event where the string raises ``IndexError`` (too few jets), ``ZeroDivisionError``,
``TypeError`` or ``NameError`` gets no value (a required observable then drops the event). Here the same
string is parsed once, checked, rewritten where Python's own semantics need arrays (``x if c else y``,
``and``/``or``/``not``, chained comparisons, ``len``, ``min``/``max``) and evaluated over columns:

- ``j[0]`` is a :class:`Vec`: the leading jet of every event, as a ``vector`` NumPy array (the library
  MadMiner's particles are made of, so every property and method is computed by the same formulas), with a
  mask of the events that have one;
- every value is a :class:`Col` (values and a validity mask). Invalid entries are what MadMiner's
  ``IndexError`` and ``ZeroDivisionError`` would have been.

Anything outside this well-defined subset (comprehensions, slices, lambdas, attribute access on something
other than a particle, calls of unknown functions) raises :class:`NotVectorisable`, and the reader then
falls back to MadMiner's per-event path with that reason logged. Mistakes a user makes (a syntax error, an
unknown name or particle property) raise :class:`ExpressionError` naming the expression, before any event is
written.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import vector

from ..math_names import NUMPY_MATH


class NotVectorisable(Exception):
    """The expression uses Python that has no column equivalent here; MadMiner's per-event path must run it."""


class ExpressionError(ValueError):
    """The expression is wrong whatever the event (syntax, unknown name or property)."""


class Col:
    """Per-event values and the events where they exist. ``py`` says whether MadMiner's value is a Python
    number (a constant, ``len``, a ``math`` function) rather than a numpy one (a particle property): only
    Python numbers raise ``ZeroDivisionError``, numpy ones give inf or nan, and MadMiner keeps those."""

    __slots__ = ("v", "ok", "py")

    def __init__(self, v: np.ndarray, ok: np.ndarray, py: bool = False):
        self.v = v
        self.ok = ok
        self.py = py

    def __bool__(self):
        raise NotVectorisable("the truth value of a per-event quantity is used outside 'x if c else y'/and/or")

    def _binary(self, other: Any, op: Callable, reverse: bool = False, zero_check: bool = False) -> Col:
        ov, ook = _unwrap(other)
        ok = self.ok & ook
        py = self.py and _is_python(other)
        a, b = (ov, self.v) if reverse else (self.v, ov)
        if zero_check and py:  # Python raises ZeroDivisionError, which MadMiner counts as a failed evaluation
            ok = ok & (np.asarray(b) != 0)
        with np.errstate(all="ignore"):
            return Col(np.asarray(op(a, b)), ok, py)

    def __eq__(self, o):  # type: ignore[override]
        return self._binary(o, np.equal)

    def __ne__(self, o):  # type: ignore[override]
        return self._binary(o, np.not_equal)

    def __neg__(self):
        return Col(-self.v, self.ok, self.py)

    def __pos__(self):
        return self

    def __abs__(self):
        return Col(np.abs(self.v), self.ok, self.py)

    __hash__ = None  # type: ignore[assignment]


def _operator(op: Callable, reverse: bool = False, zero_check: bool = False) -> Callable:
    def method(self: Col, other: Any) -> Col:
        return self._binary(other, op, reverse, zero_check)

    return method


# Python's arithmetic and comparisons on columns; divisions fail where Python raises ZeroDivisionError
for _name, _op, _zero in (
    ("add", np.add, False),
    ("sub", np.subtract, False),
    ("mul", np.multiply, False),
    ("truediv", np.true_divide, True),
    ("floordiv", np.floor_divide, True),
    ("mod", np.mod, True),
    ("pow", np.power, False),
):
    setattr(Col, f"__{_name}__", _operator(_op, zero_check=_zero))
    setattr(Col, f"__r{_name}__", _operator(_op, reverse=True, zero_check=_zero))
for _name, _op in (("lt", np.less), ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal)):
    setattr(Col, f"__{_name}__", _operator(_op))


def _is_python(x: Any) -> bool:
    return x.py if isinstance(x, Col) else isinstance(x, (bool, int, float))


def _unwrap(x: Any) -> tuple[Any, Any]:
    if isinstance(x, Col):
        return x.v, x.ok
    if isinstance(x, Vec):
        raise TypeError("a particle where a number is expected")
    if isinstance(x, (bool, int, float, np.number)):
        return x, True
    raise TypeError(f"unsupported operand {type(x).__name__}")


#: properties of MadMiner's particles besides the four-momentum ones (``vector``'s)
_AUX = ("pdgid", "charge", "b_tag", "t_tag", "tau_tag", "spin")


class Vec:
    """Per-event particles (a ``vector`` NumPy array), where they exist, with MadMiner's extra properties."""

    __slots__ = ("p", "ok", "aux")

    def __init__(self, p: Any, ok: np.ndarray, aux: dict[str, np.ndarray | None]):
        self.p = p
        self.ok = ok
        self.aux = aux

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _AUX:
            value = self.aux.get(name)
            if value is None:  # MadMiner leaves it None (sums of particles, smeared spins): any use is a TypeError
                raise NotVectorisable(f"the particle property {name!r} is None here in MadMiner")
            return Col(value, self.ok)
        try:
            attr = getattr(self.p, name)
        except AttributeError:
            raise ExpressionError(f"particles have no property {name!r}") from None
        if callable(attr):
            return _Method(attr, self.ok)
        return _wrap(attr, self.ok)

    def _combine(self, other: Any, op: Callable[[Any, Any], Any], name: str) -> Vec:
        if not isinstance(other, Vec):
            raise TypeError(f"unsupported operand for particle {name}")
        with np.errstate(all="ignore"):
            p = op(self.p, other.p)
        return Vec(p, self.ok & other.ok, _sum_aux(self.aux, other.aux))

    def __add__(self, o):
        return self._combine(o, lambda a, b: a + b, "+")

    def __sub__(self, o):
        return self._combine(o, lambda a, b: a - b, "-")

    def __mul__(self, o):
        v, ok = _unwrap(o)
        with np.errstate(all="ignore"):
            return Vec(self.p * v, self.ok & ok, _sum_aux(self.aux, None))

    __rmul__ = __mul__

    def __abs__(self):
        return _wrap(abs(self.p), self.ok)

    def __bool__(self):
        return True

    __hash__ = None  # type: ignore[assignment]


def _sum_aux(a: dict, b: dict | None) -> dict:
    """MadMiner's particle sums: pdgid and spin become None, charges add, tags are or-ed."""
    out: dict[str, np.ndarray | None] = {"pdgid": None, "spin": None}
    if b is None:
        out.update({k: a.get(k) for k in ("charge", "b_tag", "t_tag", "tau_tag")})
        return out
    ca, cb = a.get("charge"), b.get("charge")
    out["charge"] = None if ca is None or cb is None else ca + cb
    for tag in ("b_tag", "t_tag", "tau_tag"):
        ta, tb = a.get(tag), b.get(tag)
        out[tag] = None if ta is None or tb is None else ta | tb
    return out


class _Method:
    """A bound ``vector`` method (``deltaphi``, ``deltaR``, ``boost_p4``...) applied to whole columns."""

    __slots__ = ("fn", "ok")

    def __init__(self, fn: Callable, ok: np.ndarray):
        self.fn = fn
        self.ok = ok

    def __call__(self, *args: Any) -> Any:
        ok = self.ok
        plain = []
        for a in args:
            if isinstance(a, Vec):
                plain.append(a.p)
                ok = ok & a.ok
            elif isinstance(a, Col):
                plain.append(a.v)
                ok = ok & a.ok
            else:
                plain.append(a)
        with np.errstate(all="ignore"):
            return _wrap(self.fn(*plain), ok)


def _wrap(value: Any, ok: np.ndarray) -> Any:
    if isinstance(value, vector.VectorNumpy):
        return Vec(value, ok, {"pdgid": None, "spin": None, "charge": None})
    return Col(np.asarray(value, dtype=float), ok)


class Collection:
    """Objects of one kind per event (``j``, ``a``...), pT-ordered and padded; ``c[i]`` is the i-th of each event."""

    def __init__(self, p: Any, count: np.ndarray, aux: dict[str, np.ndarray | None]):
        self.p = p  # vector array of shape (n, k)
        self.count = count
        self.aux = aux

    def __getitem__(self, index: Any) -> Vec:
        if not isinstance(index, int):
            raise NotVectorisable("only constant integer indices of particle lists are supported")
        n, k = self.count.shape[0], self.p.shape[1]
        if index >= 0:
            ok = self.count > index
            pos = np.full(n, index)
        else:  # Python's negative indexing
            ok = self.count >= -index
            pos = self.count + index
        pos = np.clip(pos, 0, max(k - 1, 0))
        rows = np.arange(n)
        if k == 0:
            p = vector.array({"px": np.zeros(n), "py": np.zeros(n), "pz": np.zeros(n), "E": np.ones(n)})
            return Vec(p, np.zeros(n, dtype=bool), {name: None for name in _AUX})
        p = self.p[rows, pos]
        aux = {name: (None if a is None else a[rows, pos]) for name, a in self.aux.items()}
        return Vec(p, ok, aux)

    def __len__(self):
        raise NotVectorisable("len() of a particle list is rewritten; it should not be called directly")


# --- helpers the rewritten expressions call ------------------------------------------------------------


def _col(x: Any, n: int) -> Col:
    if isinstance(x, Col):
        return x
    if isinstance(x, Vec):
        raise TypeError("a particle where a number is expected")
    values = np.full(n, x, dtype=float) if not isinstance(x, bool) else np.full(n, x)
    return Col(values, np.ones(n, dtype=bool), isinstance(x, (bool, int, float)))


def _truth(c: Col) -> np.ndarray:
    return np.asarray(c.v).astype(bool)


def _make_helpers(n: int) -> dict[str, Callable]:
    def where(test, body, orelse):
        t = _col(test, n)
        b, o = _col(body, n), _col(orelse, n)
        tv = _truth(t)
        return Col(np.where(tv, b.v, o.v), t.ok & np.where(tv, b.ok, o.ok), b.py and o.py)

    def boolean(go_on_if: bool):
        """Python's ``and`` (``go_on_if=True``) or ``or``: the next value is taken where the previous one's
        truth is ``go_on_if``, else the previous one stands (and the next need not exist there)."""

        def f(*values):
            acc = _col(values[0], n)
            for v in values[1:]:
                nxt = _col(v, n)
                go_on = _truth(acc) == go_on_if
                acc = Col(np.where(go_on, nxt.v, acc.v), acc.ok & (~go_on | nxt.ok), acc.py and nxt.py)
            return acc

        return f

    def not_(x):
        c = _col(x, n)
        return Col(~_truth(c), c.ok, True)

    def length(x):
        if isinstance(x, Collection):
            return Col(x.count.astype(float), np.ones(n, dtype=bool), True)
        raise NotVectorisable("len() of something other than a particle list")

    def extreme(fn):
        def f(*args):
            if len(args) < 2:
                raise NotVectorisable("min()/max() of a single iterable")
            cols = [_col(a, n) for a in args]
            ok = np.logical_and.reduce([c.ok for c in cols])
            return Col(fn.reduce(np.array([c.v for c in cols], dtype=float), axis=0), ok, all(c.py for c in cols))

        return f

    def as_float(x):
        c = _col(x, n)
        return Col(np.asarray(c.v, dtype=float), c.ok, True)

    def as_int(x):
        c = _col(x, n)
        return Col(np.trunc(np.asarray(c.v, dtype=float)), c.ok, True)

    return {
        "__where__": where,
        "__and__": boolean(True),
        "__or__": boolean(False),
        "__not__": not_,
        "__len__": length,
        "__min__": extreme(np.minimum),
        "__max__": extreme(np.maximum),
        "__float__": as_float,
        "__int__": as_int,
        "__abs__": abs,
    }


def _math(fn: Callable) -> Callable:
    """A ``math`` function over columns; a domain error (``math`` raises ValueError, which MadMiner does not
    catch and so stops) raises here too, naming the first such event."""

    def f(*args):
        cols = [a for a in args if isinstance(a, Col)]
        if not cols:
            return fn(*args)
        n = len(cols[0].v)
        cs = [_col(a, n) for a in args]
        ok = np.logical_and.reduce([c.ok for c in cs])
        with np.errstate(all="ignore"):
            v = np.asarray(NUMPY_MATH[fn.__name__](*[c.v for c in cs]), dtype=float)
        bad = ok & np.isnan(v) & np.logical_and.reduce([~np.isnan(np.asarray(c.v, dtype=float)) for c in cs])
        if bad.any():
            raise MathDomainError(fn.__name__, int(np.flatnonzero(bad)[0]))
        return Col(v, ok, True)  # math's functions return Python floats

    return f


class MathDomainError(ValueError):
    def __init__(self, function: str, index: int):
        super().__init__(f"math domain error in {function}()")
        self.index = index


MATH_NAMES = {name: _math(getattr(math, name)) for name in NUMPY_MATH} | {"pi": math.pi}

_BUILTIN_CALLS = {
    "len": "__len__",
    "min": "__min__",
    "max": "__max__",
    "float": "__float__",
    "int": "__int__",
    "abs": "__abs__",
}


class _Rewrite(ast.NodeTransformer):
    """Python's control flow over per-event values becomes calls of the column helpers."""

    def __init__(self, names: set[str], collections: set[str]):
        self.names = names
        self.collections = collections

    def generic_visit(self, node):
        allowed = (
            ast.Expression,
            ast.Constant,
            ast.Name,
            ast.Load,
            ast.Attribute,
            ast.Subscript,
            ast.BinOp,
            ast.UnaryOp,
            ast.Compare,
            ast.BoolOp,
            ast.IfExp,
            ast.Call,
            ast.operator,
            ast.unaryop,
            ast.cmpop,
            ast.boolop,
        )
        if not isinstance(node, allowed):
            raise NotVectorisable(f"Python construct {type(node).__name__} has no column equivalent here")
        return super().generic_visit(node)

    def visit_Constant(self, node):
        if not isinstance(node.value, (int, float, bool)):
            raise NotVectorisable(f"constant {node.value!r} is not a number")
        return node

    def visit_Name(self, node):
        if node.id not in self.names and node.id not in _BUILTIN_CALLS:
            raise ExpressionError(f"unknown name {node.id!r} (known: {', '.join(sorted(self.names))})")
        return node

    def visit_Subscript(self, node):
        self.visit(node.value)  # an unknown name is the user's mistake, whatever the index
        index = node.slice
        if (
            isinstance(index, ast.UnaryOp)
            and isinstance(index.op, ast.USub)
            and isinstance(index.operand, ast.Constant)
        ):
            value = -index.operand.value
        elif isinstance(index, ast.Constant):
            value = index.value
        else:
            raise NotVectorisable("only constant integer indices of particle lists are supported")
        if not isinstance(value, int) or isinstance(value, bool):
            raise NotVectorisable("only constant integer indices of particle lists are supported")
        if not (isinstance(node.value, ast.Name) and node.value.id in self.collections):
            raise NotVectorisable("indexing of something other than a particle list")
        return ast.Subscript(value=node.value, slice=ast.Constant(value), ctx=ast.Load())

    def visit_Compare(self, node):
        self.generic_visit(node)
        for op in node.ops:
            if isinstance(op, (ast.In, ast.NotIn, ast.Is, ast.IsNot)):
                raise NotVectorisable(f"comparison {type(op).__name__}")
        if len(node.ops) == 1:
            return node
        terms, left = [], node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            terms.append(ast.Compare(left=left, ops=[op], comparators=[right]))
            left = right
        return _call("__and__", terms)

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        return _call("__and__" if isinstance(node.op, ast.And) else "__or__", node.values)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return _call("__not__", [node.operand])
        if isinstance(node.op, ast.Invert):
            raise NotVectorisable("bitwise inversion")
        return node

    def visit_IfExp(self, node):
        self.generic_visit(node)
        return _call("__where__", [node.test, node.body, node.orelse])

    def visit_BinOp(self, node):
        if isinstance(node.op, (ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift, ast.RShift, ast.MatMult)):
            raise NotVectorisable(f"operator {type(node.op).__name__}")
        return self.generic_visit(node)

    def visit_Call(self, node):
        if node.keywords:
            raise NotVectorisable("keyword arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise NotVectorisable("starred arguments")
        args = [self.visit(a) for a in node.args]
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in _BUILTIN_CALLS:
                return _call(_BUILTIN_CALLS[func.id], args)
            if func.id not in MATH_NAMES:
                if func.id in self.names:
                    raise NotVectorisable(f"call of {func.id!r}")
                raise ExpressionError(f"unknown function {func.id!r}")
            return ast.Call(func=func, args=args, keywords=[])
        if isinstance(func, ast.Attribute):  # a particle method, e.g. j[0].deltaphi(j[1])
            return ast.Call(func=self.visit(func), args=args, keywords=[])
        raise NotVectorisable("call of a computed function")


def _call(name: str, args: list) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


@dataclass(frozen=True)
class CompiledExpression:
    source: str
    code: Any
    names: frozenset[str]  # the names it reads (so that only those columns are built)

    def evaluate(self, namespace: dict[str, Any], n: int) -> Col:
        """Values and validity over ``n`` events. A ``TypeError`` is MadMiner's failed evaluation of every
        event (it catches ``TypeError`` per event), so it gives an all-invalid column."""
        try:
            value = eval(self.code, {"__builtins__": {}, **namespace, **_make_helpers(n)})
        except TypeError:
            return Col(np.full(n, np.nan), np.zeros(n, dtype=bool))
        return _col(value, n)


def compile_expression(source: str, names: set[str], collections: set[str]) -> CompiledExpression:
    """Parse, check and rewrite one expression. Raises ExpressionError or NotVectorisable."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as err:
        raise ExpressionError(f"syntax error at column {err.offset}: {err.msg}") from None
    used = frozenset(node.id for node in ast.walk(tree) if isinstance(node, ast.Name))
    tree = _Rewrite(names, collections).visit(tree)
    ast.fix_missing_locations(tree)
    return CompiledExpression(source, compile(tree, f"<expression {source!r}>", "eval"), used)
