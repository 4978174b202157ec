"""The gamma distribution with shape a, differentiable in x, a, loc and scale (the cdf
not in a: the derivative of gammainc in a is not given, as in autograd)."""
import scipy.stats as _stats

import fasttape.numpy as fnp
from fasttape.scipy.stats._common import any_variable, gamma_cdf, gamma_logpdf, refuse_variable

__all__ = ["pdf", "cdf", "logpdf"]


def logpdf(x, a, loc=0.0, scale=1.0):
    """(a - 1) log z - z - gammaln(a) - log(scale), z = (x - loc)/scale; -inf below 0."""
    if not any_variable(x, a, loc, scale):
        return _stats.gamma.logpdf(x, a, loc, scale)
    return gamma_logpdf(x, a, loc, scale)


def pdf(x, a, loc=0.0, scale=1.0):
    if not any_variable(x, a, loc, scale):
        return _stats.gamma.pdf(x, a, loc, scale)
    return fnp.exp(logpdf(x, a, loc, scale))


def cdf(x, a, loc=0.0, scale=1.0):
    """gammainc(a, z); differentiable in x, loc and scale, not in a."""
    refuse_variable("gamma.cdf", "a", a)
    if not any_variable(x, loc, scale):
        return _stats.gamma.cdf(x, a, loc, scale)
    return gamma_cdf(x, a, loc, scale)
