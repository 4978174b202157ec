"""Derivative rules as recorded expressions: one line per op.

The C sweeps (_tape.pyx) compute derivatives with numbers. When the derivatives must
themselves be differentiated (grad of grad, hessian, jvp of grad), a sweep instead
applies these rules to Variables, so that every operation it performs is recorded on
the tape too. Each rule gives the partial derivatives of an op in terms of its
operands and its result, written with fasttape.numpy functions, which work alike on
scalar Variables, ArrayVariables and plain numbers. They are the same formulas as
_opmath.pxd's, with the same conventions at awkward points.
"""
import math

import numpy as np

import fasttape.numpy as fnp
from fasttape._elementary import log as c_log   # nan, not ValueError, below 0

LN2 = math.log(2.0)
LN10 = math.log(10.0)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def value(x):
    """The number or array behind a Variable (or x itself)."""
    return x.value if hasattr(x, "tape") else x


def replayable(x):
    """True for a Variable of a tape recorded for replay (trace): a rule must not
    take constants from its values, which a replay changes."""
    return hasattr(x, "tape") and x.tape.replayable


def where_equal(x, c, if_equal, otherwise):
    """if_equal where x == c, else otherwise: a choice by the values, or, on a tape
    recorded for replay, one the replay re-evaluates (a select node for numbers, a
    mask for arrays), so that a traced derivative follows it."""
    if replayable(x) or replayable(c):
        from fasttape.branching import where
        return where(x == c, if_equal, otherwise)     # (the comparison just made)
    return fnp.where(np.equal(value(x), value(c)), if_equal, otherwise)


# dy/dx of the unary ops, from the operand x and the result y
UNARY_PARTIALS = {
    "NEG": lambda x, y: -1.0,
    "SQUARE": lambda x, y: 2.0 * x,
    "RECIPROCAL": lambda x, y: -(y * y),
    "SQRT": lambda x, y: 0.5 / y,
    "CBRT": lambda x, y: 1.0 / (3.0 * (y * y)),
    "EXP": lambda x, y: y,
    "EXP2": lambda x, y: y * LN2,
    "EXPM1": lambda x, y: y + 1.0,
    "LOG": lambda x, y: 1.0 / x,
    "LOG2": lambda x, y: 1.0 / (x * LN2),
    "LOG10": lambda x, y: 1.0 / (x * LN10),
    "LOG1P": lambda x, y: 1.0 / (1.0 + x),
    "SIN": lambda x, y: fnp.cos(x),
    "COS": lambda x, y: -fnp.sin(x),
    "TAN": lambda x, y: 1.0 + y * y,
    "ARCSIN": lambda x, y: 1.0 / fnp.sqrt(1.0 - x * x),
    "ARCCOS": lambda x, y: -1.0 / fnp.sqrt(1.0 - x * x),
    "ARCTAN": lambda x, y: 1.0 / (1.0 + x * x),
    "SINH": lambda x, y: fnp.cosh(x),
    "COSH": lambda x, y: fnp.sinh(x),
    "TANH": lambda x, y: 1.0 - y * y,
    "ARCSINH": lambda x, y: 1.0 / fnp.hypot(x, 1.0),
    "ARCCOSH": lambda x, y: 1.0 / (fnp.sqrt(x - 1.0) * fnp.sqrt(x + 1.0)),
    "ARCTANH": lambda x, y: 1.0 / (1.0 - x * x),
    "ABS": lambda x, y: fnp.sign(x),                # (sign' = 0: abs'' = 0 a.e.)
    "SIGN": lambda x, y: 0.0,
    "ERF": lambda x, y: TWO_OVER_SQRT_PI * fnp.exp(-(x * x)),
    "SIGMOID": lambda x, y: y * (1.0 - y),
}


def _pow_partials(a, b, y):
    # d/da = b a^(b-1), 0 where b == 0; d/db = log(a) y, 0 where a == 0 (autograd's);
    # only for the operands that are Variables (a constant's partial is never used)
    da = db = 0.0
    if hasattr(a, "tape"):
        da = where_equal(b, 0.0, 0.0, b * a ** (b - 1.0))
    if hasattr(b, "tape"):
        db = where_equal(a, 0.0, 0.0, fnp.log(where_equal(a, 0.0, 1.0, a)) * y)
    return da, db


def _selection_partials(a, b, y):
    # maximum/minimum: 1 for the operand equal to the result, 0.5 each on a tie, nan if
    # the result is nan; piecewise constant, so higher derivatives are 0
    if replayable(a) or replayable(b):
        # choices a replay re-evaluates (a nan result gives 0 here, not nan)
        a_is_y = where_equal(a, y, 1.0, 0.0)
        b_is_y = where_equal(b, y, 1.0, 0.0)
        return a_is_y * (1.0 - 0.5 * b_is_y), b_is_y * (1.0 - 0.5 * a_is_y)
    va, vb, vy = value(a), value(b), value(y)
    to_a = np.equal(va, vy)
    to_b = np.equal(vb, vy)
    with np.errstate(invalid="ignore"):
        both = np.where(to_a & to_b, 0.5, 1.0)
        da = np.where(to_a, both, np.where(to_b, 0.0, np.nan))
        db = np.where(to_b, both, np.where(to_a, 0.0, np.nan))
    if np.ndim(da) == 0:
        return float(da), float(db)
    return da, db


def _arctan2_partials(a, b, y):
    d = a * a + b * b
    return b / d, -a / d


# (dy/da, dy/db) of the binary ops, from the operands and the result
BINARY_PARTIALS = {
    "ADD_VV": lambda a, b, y: (1.0, 1.0),
    "SUB_VV": lambda a, b, y: (1.0, -1.0),
    "MUL_VV": lambda a, b, y: (b, a),
    "DIV_VV": lambda a, b, y: (1.0 / b, -(y / b)),
    "POW_VV": _pow_partials,
    "ARCTAN2": _arctan2_partials,
    "HYPOT": lambda a, b, y: (a / y, b / y),
    "MAXIMUM": _selection_partials,
    "MINIMUM": _selection_partials,
    "LOGADDEXP": lambda a, b, y: (fnp.sigmoid(a - b), fnp.sigmoid(b - a)),
}


def constant_operand_partial(name, x, c, y):
    """The partial with respect to the Variable operand of an op with a constant one
    (the *_VC and *_CV variants of the scalar tape)."""
    if name in ("ADD_VC", "SUB_VC"):
        return 1.0
    if name == "SUB_CV":
        return -1.0
    if name == "MUL_VC":
        return c
    if name == "DIV_VC":
        return 1.0 / c
    if name == "DIV_CV":
        return -(y / x)
    if name == "POW_VC":
        return 0.0 if c == 0.0 else c * x ** (c - 1.0)
    if name == "POW_CV":
        return 0.0 if c == 0.0 else c_log(c) * y
    raise KeyError(name)


def is_zero(x):
    """True for a constant that is exactly zero (a term that can be dropped)."""
    return not hasattr(x, "tape") and np.ndim(x) == 0 and x == 0.0
