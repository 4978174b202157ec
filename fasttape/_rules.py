"""Derivative rules as recorded expressions, made from the op table's formulas.

The C sweeps (_reverse.pyx, _forward.pyx, ...) compute derivatives with numbers. When
the derivatives must themselves be differentiated (grad of grad, hessian, jvp of grad),
a sweep instead applies these rules to Variables, so that every operation it performs
is recorded on the
tape too. Each rule is the table's partial (fasttape/_optable.py, the formula the C
sweeps are generated from) evaluated with fasttape.numpy functions, which work alike
on scalar Variables, ArrayVariables and plain numbers; the few helpers the formulas
name are defined here as twins of the C ones, with the same conventions.
"""
import math

import numpy as np

import fasttape.numpy as fnp
from fasttape import _optable
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


def _is_number(x):
    """A plain number (not a Variable, not an array): a constant operand."""
    return not hasattr(x, "tape") and np.ndim(x) == 0


# -- the Python twins of the C helpers of _opmath_helpers.pxd (same conventions) ------

def pow_dbase(x, p):
    # p x^(p-1); 0 where p == 0 (autograd's)
    if _is_number(p):
        return 0.0 if p == 0.0 else p * x ** (p - 1.0)
    return where_equal(p, 0.0, 0.0, p * x ** (p - 1.0))


def pow_dexponent(x, y):
    # log(x) x^p = log(x) y; 0 where x == 0 (autograd's)
    if _is_number(x):
        return 0.0 if x == 0.0 else c_log(x) * y
    return where_equal(x, 0.0, 0.0, fnp.log(where_equal(x, 0.0, 1.0, x)) * y)


def selection_partials(a, b, y):
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


def arctan2_partials(a, b, y):
    d = a * a + b * b
    return b / d, -a / d


def logaddexp_partials(a, b, y):
    return fnp.sigmoid(a - b), fnp.sigmoid(b - a)


def logaddexp2_partials(a, b, y):
    # logaddexp's weights at (ln2 a, ln2 b), as in C
    return logaddexp_partials(LN2 * a, LN2 * b, y)


def sinc_derivative(x, y):
    # (cos(pi x) - sinc x) / x; 0 at 0
    if _is_number(x):
        return 0.0 if x == 0.0 else (math.cos(math.pi * x) - y) / x
    return where_equal(x, 0.0, 0.0, (fnp.cos(math.pi * x) - y)
                       / where_equal(x, 0.0, 1.0, x))


def trigamma(x):
    # psi'(x) = polygamma(1, x): a node with Python rules (its derivatives are
    # polygamma(n + 1, x)), the C helper's twin
    from fasttape.scipy.special import polygamma
    return polygamma(1, x)


def i1_derivative(x):
    # I1'(x) = I0(x) - I1(x)/x; 1/2 at 0
    if _is_number(x):
        return 0.5 if x == 0.0 else float(fnp.i0(x) - fnp.i1(x) / x)
    return where_equal(x, 0.0, 0.5, fnp.i0(x) - fnp.i1(x) / where_equal(x, 0.0, 1.0, x))


def j1_derivative(x):
    # J1'(x) = J0(x) - J1(x)/x; 1/2 at 0
    if _is_number(x):
        return 0.5 if x == 0.0 else float(fnp.j0(x) - fnp.j1(x) / x)
    return where_equal(x, 0.0, 0.5, fnp.j0(x) - fnp.j1(x) / where_equal(x, 0.0, 1.0, x))


# The names a formula of the op table may use, as recorded operations
FORMULA_NAMESPACE = {
    "sqrt": fnp.sqrt, "cbrt": fnp.cbrt, "exp": fnp.exp, "exp2": fnp.exp2,
    "expm1": fnp.expm1, "log": fnp.log, "log2": fnp.log2, "log10": fnp.log10,
    "log1p": fnp.log1p, "sin": fnp.sin, "cos": fnp.cos, "tan": fnp.tan,
    "asin": fnp.arcsin, "acos": fnp.arccos, "atan": fnp.arctan, "sinh": fnp.sinh,
    "cosh": fnp.cosh, "tanh": fnp.tanh, "asinh": fnp.arcsinh, "acosh": fnp.arccosh,
    "atanh": fnp.arctanh, "fabs": fnp.abs, "hypot": fnp.hypot, "atan2": fnp.arctan2,
    "pow": fnp.power, "erf": fnp.erf, "sign": fnp.sign, "sigmoid": fnp.sigmoid,
    "maximum": fnp.maximum, "minimum": fnp.minimum, "logaddexp": fnp.logaddexp,
    "floor": fnp.floor, "trunc": fnp.trunc, "sinc_derivative": sinc_derivative,
    "logaddexp2_partials": logaddexp2_partials,
    "pow_dbase": pow_dbase, "pow_dexponent": pow_dexponent,
    "selection_partials": selection_partials, "arctan2_partials": arctan2_partials,
    "logaddexp_partials": logaddexp_partials,
    "digamma": fnp.digamma, "digamma_series": fnp.digamma, "trigamma": trigamma,
    "i1": fnp.i1, "j1": fnp.j1, "y0": fnp.y0, "y1": fnp.y1,
    "i1_derivative": i1_derivative, "j1_derivative": j1_derivative,
    "LN2": LN2, "LN10": LN10, "TWO_OVER_SQRT_PI": TWO_OVER_SQRT_PI,
}


def _rule(parameters, body):
    return eval(f"lambda {parameters}: {body}", FORMULA_NAMESPACE)


def _binary_rule(op):
    """(dy/da, dy/db) from the operands and the result; a constant operand's partial
    is never used, so it is not computed (0.0)."""
    if op.pair_helper:
        return _rule("a, b, y", f"{op.pair_helper}(a, b, y)")
    da, db = (_rule("a, b, y", p) for p in op.partials)

    def partials(a, b, y):
        return (da(a, b, y) if not _is_number(a) else 0.0,
                db(a, b, y) if not _is_number(b) else 0.0)
    return partials


# The rules of every op of the table, keyed by op-code name: dy/dx of the unary ops
# from the operand x and the result y; (dy/da, dy/db) of the ops of two variables; the
# partial of a constant-operand variant (*_VC, *_CV) from x, the constant c and y.
UNARY_PARTIALS = {}
BINARY_PARTIALS = {}
CONSTANT_OPERAND_PARTIALS = {}
for _name, _op, _variant in _optable.expanded():
    if _op.kind == "unary":
        UNARY_PARTIALS[_name] = _rule("x, y", _op.partials[0])
    elif _variant in ("VC", "CV"):
        CONSTANT_OPERAND_PARTIALS[_name] = _rule(
            "x, c, y", _optable.variant_partial(_op, _variant))
    elif _op.kind != "structural":
        BINARY_PARTIALS[_name] = _binary_rule(_op)


def constant_operand_partial(name, x, c, y):
    """The partial with respect to the Variable operand of an op with a constant one
    (the *_VC and *_CV variants of the scalar tape)."""
    return CONSTANT_OPERAND_PARTIALS[name](x, c, y)


def is_zero(x):
    """True for a constant that is exactly zero (a term that can be dropped)."""
    return not hasattr(x, "tape") and np.ndim(x) == 0 and x == 0.0
