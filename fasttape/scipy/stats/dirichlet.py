"""The Dirichlet distribution, differentiable in x and alpha. As SciPy: the components
run along the first axis of x (shape (k,) or (k, n)), and x may leave out the last
component (it is 1 minus the sum of the others)."""
import numpy as np
import scipy.stats as _stats

import fasttape.numpy as fnp
from fasttape.scipy.special import gammaln
from fasttape.scipy.stats._common import any_variable, value, xlogy

__all__ = ["pdf", "logpdf", "rvs"]

rvs = _stats.dirichlet.rvs


def logpdf(x, alpha):
    """sum_i (alpha_i - 1) log x_i + gammaln(sum alpha) - sum gammaln(alpha)."""
    if not any_variable(x, alpha):
        return _stats.dirichlet.logpdf(x, alpha)
    alpha_shape = np.shape(value(alpha))
    x_shape = np.shape(value(x))
    if len(alpha_shape) != 1:
        raise ValueError(f"dirichlet: alpha must be one-dimensional, not of shape "
                         f"{alpha_shape}")
    k = alpha_shape[0]
    if not x_shape or x_shape[0] not in (k, k - 1):
        raise ValueError(f"dirichlet: x of shape {x_shape} does not hold {k} (or "
                         f"{k - 1}) components along its first axis")
    if x_shape[0] == k - 1:
        x = fnp.concatenate([x, 1.0 - fnp.sum(x, axis=0, keepdims=True)], axis=0)
    xv = np.asarray(value(x))
    if np.any(xv < 0) or np.any(xv > 1) or np.any(np.abs(np.sum(xv, 0) - 1.0) > 1e-9):
        raise ValueError("dirichlet: the components of x must lie in [0, 1] and sum "
                         "to 1 along the first axis")
    a = fnp.reshape(alpha, (k,) + (1,) * (len(x_shape) - 1)) if len(x_shape) > 1 \
        else alpha
    log_normalizer = gammaln(fnp.sum(alpha)) - fnp.sum(gammaln(alpha))
    return fnp.sum(xlogy(a - 1.0, x), axis=0) + log_normalizer


def pdf(x, alpha):
    if not any_variable(x, alpha):
        return _stats.dirichlet.pdf(x, alpha)
    return fnp.exp(logpdf(x, alpha))
