"""Python's ``math`` module, differentiable: the same names, for Variables and floats.

``import fasttape.math as math`` in code written with ``math.sin`` & co. makes it
differentiable. Results follow NumPy's float64 rules rather than ``math``'s
exceptions: ``log(-1.0)`` is nan, ``log(0.0)`` is -inf.
"""
import math as _math

from fasttape import _elementary, _optable
from fasttape._elementary import hypot as _hypot2, log as _log

# the op table's functions under their math names (sin, asin, fabs, pow, ...)
for _op in _optable.OPS:
    for _name in _op.math:
        globals()[_name] = getattr(_elementary, _op.function)

pi = _math.pi
e = _math.e
tau = _math.tau
inf = _math.inf
nan = _math.nan


def log(x, base=None):
    """Natural logarithm, or the logarithm to ``base`` (as ``math.log``)."""
    if base is None:
        return _log(x)
    return _log(x) / _log(base)


def hypot(*coordinates):
    """Euclidean norm sqrt(sum of squares) of any number of coordinates."""
    if not coordinates:
        return 0.0
    if len(coordinates) == 1:
        return _elementary.abs(coordinates[0])
    result = coordinates[0]
    for c in coordinates[1:]:
        result = _hypot2(result, c)
    return result


def fsum(values):
    """Sum of an iterable (a plain left-to-right sum when Variables are involved)."""
    values = list(values)
    if all(isinstance(v, (int, float)) for v in values):
        return _math.fsum(values)
    total = 0.0
    for v in values:
        total = total + v
    return total


def _value(x):
    return x.value if hasattr(x, "tape") else x


def isnan(x):
    """True if x (a Variable or a number) is nan; records nothing."""
    return _math.isnan(_value(x))


def isinf(x):
    """True if x is +-inf; records nothing."""
    return _math.isinf(_value(x))


def isfinite(x):
    """True if x is neither nan nor infinite; records nothing."""
    return _math.isfinite(_value(x))


__all__ = [name for op in _optable.OPS for name in op.math] + [
    "log", "hypot", "fsum", "isnan", "isinf", "isfinite",
    "pi", "e", "tau", "inf", "nan"]
