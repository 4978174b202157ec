"""Recorded boolean arrays: what a comparison of arrays returns while tracing.

``trace`` records a function once and replays it at new inputs. A comparison of
arrays, ``x > 0``, is then data the replay must recompute, so instead of a plain
boolean array it returns an ``ArrayMask``: a handle to a mask node on the tape (1.0
where the comparison holds), which the replay re-evaluates in C.

Used as the condition of ``np.where`` / ``fasttape.where`` (or combined with ``&``,
``|``, ``^``, ``~``), a mask stays recorded and the choice follows it on replay: no
branch, nothing to guard. Any other use reads its booleans — ``if m.any():``,
``x[m]``, ``m.sum()``, ``m * 1.0``, ``np.asarray(m)`` — and the Python code then
depends on them in ways a replay cannot follow; so the mask becomes a guard: a replay
at inputs where any of its values differs raises ``BranchChangedError`` (or retraces),
as a comparison of scalar Variables does.
"""
import operator
import os
import sys

import numpy as np

from fasttape import _arrays
from fasttape._tape import MASK_OPS

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_location():
    """file:line of the nearest frame outside fasttape."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return "an unknown place" if frame is None else \
        f"{frame.f_code.co_filename}:{frame.f_lineno}"


class ArrayMask:
    """A recorded boolean array (see the module docstring). Behaves as a NumPy
    boolean array; reading its values makes it a guard of the traced function."""

    __slots__ = ("tape", "anode", "epoch", "node_value", "location", "guarded")
    __array_priority__ = 200            # ndarray op mask -> the mask's reflected op
    __hash__ = None

    def __init__(self, tape, anode, node_value):
        self.tape = tape
        self.anode = anode
        self.epoch = tape.epoch
        self.node_value = node_value    # the node's 0.0/1.0 values (replays write them)
        self.location = _caller_location() if tape.locate_guards else "an unknown place"
        self.guarded = False

    # -- the booleans (which guard the mask) ----------------------------------------------

    def _booleans(self):
        values = self.node_value != 0.0
        if not self.guarded and self.epoch == self.tape.epoch:
            self.guarded = True
            self.tape.array_guards.append((self.anode, self.node_value, values.copy(),
                                           self.location))
        return values

    def __array__(self, dtype=None, copy=None):
        values = self._booleans()
        return values if dtype is None else values.astype(dtype)

    def __getattr__(self, name):        # the ndarray's methods and attributes
        if name.startswith("__") or name in ArrayMask.__slots__:
            raise AttributeError(name)
        return getattr(self._booleans(), name)

    @property
    def shape(self):
        return self.node_value.shape

    @property
    def ndim(self):
        return self.node_value.ndim

    @property
    def size(self):
        return self.node_value.size

    @property
    def dtype(self):
        return np.dtype(bool)

    def __len__(self):
        return len(self.node_value)

    def __bool__(self):
        return bool(self._booleans())

    def __iter__(self):
        return iter(self._booleans())

    def __getitem__(self, key):
        return self._booleans()[key]

    def __index__(self):
        return operator.index(self._booleans())

    def __int__(self):
        return int(self._booleans())

    def __float__(self):
        return float(self._booleans())

    def __repr__(self):                 # (showing the values is not using them)
        return f"ArrayMask({self.node_value != 0.0!r})"

    # -- recorded: logical combinations -------------------------------------------------

    def _combine(self, sop, other):
        if type(other) is ArrayMask or isinstance(other, (bool, np.bool_)) or (
                isinstance(other, np.ndarray) and other.dtype == bool):
            return _arrays.record_mask(sop, self, other)
        return getattr(self._booleans(), _FALLBACK[sop])(other)

    def __and__(self, other):
        return self._combine(MASK_OPS["and"], other)

    __rand__ = __and__

    def __or__(self, other):
        return self._combine(MASK_OPS["or"], other)

    __ror__ = __or__

    def __xor__(self, other):
        return self._combine(MASK_OPS["xor"], other)

    __rxor__ = __xor__

    def __invert__(self):
        return _arrays.record_mask(MASK_OPS["not"], self)

    # -- NumPy protocols ---------------------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        sop = _UFUNC_MASK_OPS.get(ufunc)
        if sop is not None and method == "__call__" and not kwargs:
            if sop == MASK_OPS["not"]:
                return _arrays.record_mask(sop, inputs[0])
            if all(type(x) is ArrayMask or np.asarray(x).dtype == bool for x in inputs):
                return _arrays.record_mask(sop, *inputs)
        return getattr(ufunc, method)(*_unmasked(inputs), **_unmasked(kwargs))

    def __array_function__(self, func, types, args, kwargs):
        if func is np.where and len(args) + len(kwargs) == 3:
            return _arrays.array_function_implementation(np.where)(*args, **kwargs)
        return func(*_unmasked(args), **_unmasked(kwargs))


# the other comparisons and arithmetic: on the booleans (a guard)
def _on_booleans(name):
    def method(self, *others):
        return getattr(self._booleans(), name)(*_unmasked(others))
    method.__name__ = name
    return method


for _name in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__add__",
              "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
              "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__",
              "__pow__", "__rpow__", "__neg__", "__pos__", "__abs__", "__matmul__",
              "__rmatmul__"):
    setattr(ArrayMask, _name, _on_booleans(_name))

_FALLBACK = {MASK_OPS["and"]: "__and__", MASK_OPS["or"]: "__or__",
             MASK_OPS["xor"]: "__xor__"}
_UFUNC_MASK_OPS = {np.logical_and: MASK_OPS["and"], np.bitwise_and: MASK_OPS["and"],
                   np.logical_or: MASK_OPS["or"], np.bitwise_or: MASK_OPS["or"],
                   np.logical_xor: MASK_OPS["xor"], np.bitwise_xor: MASK_OPS["xor"],
                   np.logical_not: MASK_OPS["not"], np.invert: MASK_OPS["not"]}


def _unmasked(x):
    """x with every ArrayMask (also inside lists, tuples and dicts) as its booleans."""
    if type(x) is ArrayMask:
        return x._booleans()
    if type(x) in (list, tuple):
        return type(x)(_unmasked(v) for v in x)
    if type(x) is dict:
        return {k: _unmasked(v) for k, v in x.items()}
    return x
