"""scipy.special, differentiable: logsumexp, expit, erf, gammaln."""
import numpy as _np
import scipy.special as _special

import fasttape.numpy as fnp
from fasttape._arrays import ArrayVariable
from fasttape._rule_nodes import operand_slots, rule_node
from fasttape._variable import Variable


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def logsumexp(a, axis=None, keepdims=False, b=None):
    """log(sum(b * exp(a))) along axis, shifted by the (constant) maximum so that it
    never overflows; the gradient is the softmax b * exp(a - result)."""
    if not (_is_variable(a) or _is_variable(b)):
        return _special.logsumexp(a, axis=axis, keepdims=keepdims, b=b)
    values = a.value if _is_variable(a) else _np.asarray(a, dtype=float)
    shift = _np.max(values, axis=axis, keepdims=True)
    shift = _np.where(_np.isfinite(shift), shift, 0.0)
    terms = fnp.exp(a - shift)
    if b is not None:
        terms = terms * b
    out = fnp.log(fnp.sum(terms, axis=axis, keepdims=True)) + shift
    if keepdims:
        return out
    return fnp.reshape(out, _np.squeeze(shift, axis=axis).shape) if axis is not None \
        else fnp.reshape(out, ())


def expit(x):
    """The logistic sigmoid 1 / (1 + exp(-x)); derivative s (1 - s)."""
    return fnp.sigmoid(x)


def erf(x):
    """The error function; derivative 2/sqrt(pi) exp(-x^2)."""
    return fnp.erf(x)


def gammaln(x):
    """log|Gamma(x)|; derivative digamma(x) (first order only: digamma is not
    differentiated)."""
    if not _is_variable(x):
        return _special.gammaln(x)
    value = _special.gammaln(x.value)
    return rule_node([x], float(value) if _np.ndim(value) == 0 else value,
                     lambda g, y, x: [g * digamma(x)],
                     lambda t, y, x: t[0] * digamma(x), _special.gammaln,
                     (gammaln, operand_slots(1), {}))


def digamma(x):
    """digamma = d/dx gammaln (not differentiable itself here)."""
    if _is_variable(x):
        raise TypeError("fasttape cannot differentiate scipy.special.digamma")
    return _special.digamma(x)


psi = digamma
