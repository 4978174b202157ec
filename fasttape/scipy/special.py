"""scipy.special, differentiable: autograd.scipy.special's functions, elementwise with
broadcasting, on arrays and on scalar Variables, in both modes and to any order.

Where the functions come from:

- the functions of one argument with closed-form derivatives (``gamma``, ``gammaln``,
  ``rgamma``, ``gammasgn``, ``digamma``/``psi``, ``erf``, ``erfc``, ``erfinv``,
  ``erfcinv``, ``expit``, ``logit``, ``i0``, ``i1``, ``j0``, ``j1``, ``y0``, ``y1``) are
  rows of the op table (fasttape/_optable.py): one node per call, derivatives in C
  (SciPy's ``cython_special`` and the table's helpers), the same functions as
  ``fasttape.gammaln`` and ``fasttape.numpy.gammaln``;
- the functions with an order or a shape parameter (``polygamma(n, x)``, ``iv``,
  ``ive``, ``jn``, ``yn``, ``gammainc``, ``gammaincc``, ``betainc``) are one node each
  with Python rules (fasttape._rule_nodes), differentiable in x only: an order is not a
  continuous argument, and the derivatives of the incomplete gamma and beta functions
  in their shape parameters are not given (as in autograd). Passing a Variable there
  raises MissingRuleError naming the argument;
- ``beta``, ``betaln``, ``multigammaln`` and ``logsumexp`` are compositions.

Calling scipy.special itself on a Variable raises a TypeError naming the function
here (see Variable.__array_ufunc__); SciPy's functions cannot be intercepted.
"""
import numpy as _np
import scipy.special as _special

import fasttape.numpy as fnp
from fasttape._arrays import ArrayVariable
from fasttape._rule_nodes import rule_node
from fasttape._tape_state import OperandSlot
from fasttape._variable import Variable
from fasttape.errors import MissingRuleError

__all__ = ["beta", "betaln", "betainc", "gamma", "gammaln", "gammasgn", "rgamma",
           "digamma", "psi", "polygamma", "multigammaln", "gammainc", "gammaincc",
           "erf", "erfc", "erfinv", "erfcinv", "expit", "logit", "logsumexp", "i0",
           "i1", "iv", "ive", "j0", "j1", "jn", "y0", "y1", "yn"]


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def _value(x):
    return x.value if _is_variable(x) else x


# -- one argument: the op table's rows ------------------------------------------------

gamma = fnp.gamma
gammaln = fnp.gammaln
rgamma = fnp.rgamma
gammasgn = fnp.gammasgn
digamma = fnp.digamma
psi = digamma
erf = fnp.erf
erfc = fnp.erfc
erfinv = fnp.erfinv
erfcinv = fnp.erfcinv
expit = fnp.sigmoid
logit = fnp.logit
i0 = fnp.i0
i1 = fnp.i1
j0 = fnp.j0
j1 = fnp.j1
y0 = fnp.y0
y1 = fnp.y1


# -- a constant parameter and x: one node with Python rules ---------------------------

def _refuse_variable(function, argument, position, value):
    if _is_variable(value):
        raise MissingRuleError(
            f"fasttape.scipy.special.{function} is differentiable in x only, not in its "
            f"argument {argument} (argument {position}); pass {argument} as a constant "
            f"(autograd gives no derivative there either)")


def _with_parameters(function, evaluate, parameters, x, partial):
    """y = evaluate(*parameters, x) elementwise with broadcasting: one node whose only
    operand is x (broadcast to the result's shape first, so that broadcast_to's rule
    sums the cotangent back), the parameters constants. partial(parameters, x) -> dy/dx
    written with fasttape functions, so that it records itself when x is a Variable
    (the derivatives of every order)."""
    shape = _np.broadcast(*[_np.asarray(_value(p)) for p in parameters],
                          _np.asarray(_value(x))).shape
    if _np.shape(_value(x)) != shape:
        x = fnp.broadcast_to(x, shape)
    parameters = tuple(_np.broadcast_to(_np.asarray(p, dtype=float), shape)
                       for p in parameters)
    value = evaluate(*parameters, _value(x))
    value = float(value) if shape == () else _np.asarray(value, dtype=float)

    def reverse(g, ans, x):
        return [g * partial(parameters, x)]

    def forward(tangents, ans, x):
        return tangents[0] * partial(parameters, x)

    return rule_node([x], value, reverse, forward,
                     lambda x: evaluate(*parameters, x),
                     (function, (*parameters, OperandSlot(0)), {}))


def polygamma(n, x):
    """The n-th derivative of digamma, psi^(n)(x) (n = 0: digamma). d/dx =
    polygamma(n + 1, x); n is an order (not differentiable)."""
    _refuse_variable("polygamma", "n", 0, n)
    if not _is_variable(x):
        return _special.polygamma(n, x)
    if _np.all(_np.asarray(n) == 0):          # digamma: the op table's row
        shape = _np.broadcast(_np.asarray(n), _np.asarray(_value(x))).shape
        out = digamma(x)
        return out if _np.shape(_value(x)) == shape else fnp.broadcast_to(out, shape)
    return _with_parameters(polygamma, _special.polygamma, (n,), x,
                            lambda p, x: polygamma(p[0] + 1.0, x))


def iv(v, x):
    """Modified Bessel function of the first kind of real order v. d/dx =
    (I_{v-1}(x) + I_{v+1}(x)) / 2; v is not differentiable."""
    _refuse_variable("iv", "v", 0, v)
    if not _is_variable(x):
        return _special.iv(v, x)
    return _with_parameters(iv, _special.iv, (v,), x,
                            lambda p, x: 0.5 * (iv(p[0] - 1.0, x) + iv(p[0] + 1.0, x)))


def ive(v, x):
    """Exponentially scaled I_v: iv(v, x) exp(-|x|). d/dx = (ive(v-1, x) +
    ive(v+1, x)) / 2 - sign(x) ive(v, x); v is not differentiable."""
    _refuse_variable("ive", "v", 0, v)
    if not _is_variable(x):
        return _special.ive(v, x)
    return _with_parameters(
        ive, _special.ive, (v,), x,
        lambda p, x: 0.5 * (ive(p[0] - 1.0, x) + ive(p[0] + 1.0, x))
        - fnp.sign(x) * ive(p[0], x))


def jn(n, x):
    """Bessel function of the first kind of order n (scipy.special.jn, which is jv).
    d/dx = (J_{n-1}(x) - J_{n+1}(x)) / 2; n is not differentiable."""
    _refuse_variable("jn", "n", 0, n)
    if not _is_variable(x):
        return _special.jn(n, x)
    return _with_parameters(jn, _special.jn, (n,), x,
                            lambda p, x: 0.5 * (jn(p[0] - 1.0, x) - jn(p[0] + 1.0, x)))


def yn(n, x):
    """Bessel function of the second kind of integer order n (x > 0). d/dx =
    (Y_{n-1}(x) - Y_{n+1}(x)) / 2; n is not differentiable."""
    _refuse_variable("yn", "n", 0, n)
    if not _is_variable(x):
        return _special.yn(n, x)
    if not _np.all(_np.asarray(n) == _np.round(n)):
        raise ValueError("fasttape.scipy.special.yn takes integer orders n")
    return _with_parameters(yn, _integer_order_yn, (n,), x,
                            lambda p, x: 0.5 * (yn(p[0] - 1.0, x) - yn(p[0] + 1.0, x)))


def _integer_order_yn(n, x):
    # scipy.special.yn takes integer orders (the parameters are kept as floats here)
    return _special.yn(_np.asarray(n).astype(_np.int64), x)


def _log_power(exponent, x, log_function):
    """exponent * log_function(x) with 0 where exponent is 0 (also at x where the log
    is -inf), exponent a constant array: the factor x^0 = 1 of the densities below."""
    if _np.ndim(exponent) == 0:
        return 0.0 if exponent == 0.0 else exponent * log_function(x)
    zero = exponent == 0.0
    if not zero.any():
        return exponent * log_function(x)
    safe = fnp.where(zero, 0.5, x)          # (a point inside both logs' domains)
    return fnp.where(zero, 0.0, exponent * log_function(safe))


def gammainc(a, x):
    """Regularized lower incomplete gamma function P(a, x). d/dx = x^(a-1) e^(-x) /
    Gamma(a); not differentiable in a."""
    _refuse_variable("gammainc", "a", 0, a)
    if not _is_variable(x):
        return _special.gammainc(a, x)
    return _with_parameters(gammainc, _special.gammainc, (a,), x,
                            lambda p, x: _gamma_density(p[0], x))


def gammaincc(a, x):
    """Regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x). d/dx =
    -x^(a-1) e^(-x) / Gamma(a); not differentiable in a."""
    _refuse_variable("gammaincc", "a", 0, a)
    if not _is_variable(x):
        return _special.gammaincc(a, x)
    return _with_parameters(gammaincc, _special.gammaincc, (a,), x,
                            lambda p, x: -_gamma_density(p[0], x))


def _gamma_density(a, x):
    # x^(a-1) e^(-x) / Gamma(a), as an exponential so that large a does not overflow
    return fnp.exp(_log_power(a - 1.0, x, fnp.log) - x - _special.gammaln(a))


def betainc(a, b, x):
    """Regularized incomplete beta function I_x(a, b). d/dx = x^(a-1) (1-x)^(b-1) /
    B(a, b); not differentiable in a or b."""
    _refuse_variable("betainc", "a", 0, a)
    _refuse_variable("betainc", "b", 1, b)
    if not _is_variable(x):
        return _special.betainc(a, b, x)
    return _with_parameters(betainc, _special.betainc, (a, b), x,
                            lambda p, x: fnp.exp(
                                _log_power(p[0] - 1.0, x, fnp.log)
                                + _log_power(p[1] - 1.0, x, _log1m)
                                - _special.betaln(p[0], p[1])))


def _log1m(x):
    return fnp.log1p(-x)


# -- compositions -----------------------------------------------------------------------

def betaln(a, b):
    """log|B(a, b)| = gammaln(a) + gammaln(b) - gammaln(a + b); differentiable in both."""
    if not (_is_variable(a) or _is_variable(b)):
        return _special.betaln(a, b)
    return gammaln(a) + gammaln(b) - gammaln(a + b)


def beta(a, b):
    """The beta function B(a, b) = Gamma(a) Gamma(b) / Gamma(a + b); differentiable in
    both (as exp(betaln) times the sign of the gammas, so that it does not overflow
    where the gammas do)."""
    if not (_is_variable(a) or _is_variable(b)):
        return _special.beta(a, b)
    sign = _special.gammasgn(_value(a)) * _special.gammasgn(_value(b)) \
        * _special.gammasgn(_np.add(_value(a), _value(b)))
    return sign * fnp.exp(betaln(a, b))


def multigammaln(a, d):
    """The log of the multivariate gamma function of dimension d:
    d(d-1)/4 log(pi) + sum_j gammaln(a - j/2), j = 0 .. d-1 (SciPy's; a > (d-1)/2)."""
    if not _is_variable(a):
        return _special.multigammaln(a, d)
    if int(d) != d or d < 1:
        raise ValueError(f"multigammaln's dimension d must be a positive integer, not {d}")
    d = int(d)
    if _np.any(_np.asarray(_value(a)) <= 0.5 * (d - 1)):
        raise ValueError(f"multigammaln: a must be > (d - 1)/2 = {0.5 * (d - 1)}")
    total = 0.25 * d * (d - 1) * _np.log(_np.pi)
    for j in range(d):
        total = total + gammaln(a - 0.5 * j)
    return total


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log(sum(b * exp(a))) along axis, shifted by the (constant) maximum so that it
    never overflows; the gradient is the softmax b * exp(a - result). With
    return_sign, also the sign of the sum (a constant), as SciPy's."""
    if not (_is_variable(a) or _is_variable(b)):
        return _special.logsumexp(a, axis=axis, b=b, keepdims=keepdims,
                                  return_sign=return_sign)
    values = _value(a)
    values = _np.asarray(values, dtype=float)
    shift = _np.max(values, axis=axis, keepdims=True) if values.size else \
        _np.zeros([1] * values.ndim)
    shift = _np.where(_np.isfinite(shift), shift, 0.0)
    terms = fnp.exp(a - shift)
    if b is not None:
        terms = terms * b
    total = fnp.sum(terms, axis=axis, keepdims=True)
    sign = _np.sign(_value(total))
    out = fnp.log(total * sign if return_sign else total) + shift
    if not keepdims:
        reduced = _np.squeeze(shift, axis=axis).shape if axis is not None else ()
        out = fnp.reshape(out, reduced)
        sign = _np.reshape(sign, reduced)
    if return_sign:
        return out, sign
    return out
