"""The beta distribution with shapes a, b, differentiable in x, a, b, loc and scale
(the cdf not in a, b: the derivative of betainc there is not given, as in autograd)."""
import numpy as np
import scipy.stats as _stats

import fasttape.numpy as fnp
from fasttape.scipy.special import betainc, betaln
from fasttape.scipy.stats._common import (any_variable, inside_support, log1m, outside,
                                          refuse_variable, value, xlogy)

__all__ = ["pdf", "cdf", "logpdf"]


def logpdf(x, a, b, loc=0.0, scale=1.0):
    """(a - 1) log z + (b - 1) log(1 - z) - betaln(a, b) - log(scale), z = (x - loc)/scale;
    -inf outside [0, 1]."""
    if not any_variable(x, a, b, loc, scale):
        return _stats.beta.logpdf(x, a, b, loc, scale)
    z = (x - loc) / scale
    zv = np.asarray(value(z))
    off = (zv < 0) | (zv > 1)
    z = inside_support(z, off, 0.5)
    out = xlogy(a - 1.0, z) + xlogy(b - 1.0, z, log1m) - betaln(a, b) - fnp.log(scale)
    return outside(off, out, -np.inf)


def pdf(x, a, b, loc=0.0, scale=1.0):
    if not any_variable(x, a, b, loc, scale):
        return _stats.beta.pdf(x, a, b, loc, scale)
    return fnp.exp(logpdf(x, a, b, loc, scale))


def cdf(x, a, b, loc=0.0, scale=1.0):
    """betainc(a, b, z); differentiable in x, loc and scale, not in a or b."""
    refuse_variable("beta.cdf", "a", a)
    refuse_variable("beta.cdf", "b", b)
    if not any_variable(x, loc, scale):
        return _stats.beta.cdf(x, a, b, loc, scale)
    z = (x - loc) / scale
    if np.any((np.asarray(value(z)) < 0) | (np.asarray(value(z)) > 1)):
        z = fnp.clip(z, 0.0, 1.0)
    return betainc(a, b, z)
