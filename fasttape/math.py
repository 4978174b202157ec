"""Python's ``math`` module, differentiable: the same names, for Variables and floats.

``import fasttape.math as math`` in code written with ``math.sin`` & co. makes it
differentiable. Results follow NumPy's float64 rules rather than ``math``'s
exceptions: ``log(-1.0)`` is nan, ``log(0.0)`` is -inf.
"""
import math as _math

from fasttape._elementary import (
    abs as fabs, arccos as acos, arccosh as acosh, arcsin as asin,
    arcsinh as asinh, arctan as atan, arctan2 as atan2, arctanh as atanh, cbrt, cos,
    cosh, erf, exp, exp2, expm1, hypot as _hypot2, log as _log, log1p, log2, log10,
    power as pow, sin, sinh, sqrt, tan, tanh)

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
        return fabs(coordinates[0])
    result = coordinates[0]
    for c in coordinates[1:]:
        result = _hypot2(result, c)
    return result


def degrees(x):
    """Radians to degrees."""
    return x * (180.0 / _math.pi)


def radians(x):
    """Degrees to radians."""
    return x * (_math.pi / 180.0)


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


__all__ = ["sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh",
           "tanh", "asinh", "acosh", "atanh", "exp", "exp2", "expm1", "log", "log2",
           "log10", "log1p", "sqrt", "cbrt", "pow", "fabs", "hypot", "erf",
           "degrees", "radians", "fsum", "isnan", "isinf", "isfinite",
           "pi", "e", "tau", "inf", "nan"]
