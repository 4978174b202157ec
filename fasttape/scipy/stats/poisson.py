"""The Poisson distribution, differentiable in its mean mu (k counts: not
differentiable)."""
import numpy as np
import scipy.stats as _stats

import fasttape.numpy as fnp
from fasttape.scipy.special import gammaincc, gammaln
from fasttape.scipy.stats._common import any_variable, outside, refuse_variable, xlogy

__all__ = ["pmf", "cdf", "logpmf"]


def logpmf(k, mu, loc=0):
    """k log(mu) - gammaln(k + 1) - mu at the counts k = 0, 1, ... (-inf elsewhere)."""
    refuse_variable("poisson.logpmf", "k", k)
    if not any_variable(mu):
        return _stats.poisson.logpmf(k, mu, loc)
    k = np.asarray(k, dtype=float) - loc
    out = xlogy(k, mu) - gammaln(k + 1.0) - mu
    return outside((k < 0) | (k != np.floor(k)), out, -np.inf)


def pmf(k, mu, loc=0):
    refuse_variable("poisson.pmf", "k", k)
    if not any_variable(mu):
        return _stats.poisson.pmf(k, mu, loc)
    return fnp.exp(logpmf(k, mu, loc))


def cdf(k, mu, loc=0):
    """P(K <= k) = gammaincc(floor(k) + 1, mu); 0 below k = 0."""
    refuse_variable("poisson.cdf", "k", k)
    if not any_variable(mu):
        return _stats.poisson.cdf(k, mu, loc)
    k = np.floor(np.asarray(k, dtype=float) - loc)
    out = gammaincc(np.maximum(k, 0.0) + 1.0, mu)
    return outside(k < 0, out, 0.0)
