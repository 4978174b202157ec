"""The normal distribution, differentiable in x, loc and scale (SciPy's
scipy.stats.norm functions and argument names)."""
import numpy as np
import scipy.special as _special
import scipy.stats as _stats

import fasttape.numpy as fnp
from fasttape._rule_nodes import rule_node
from fasttape._tape_state import OperandSlot
from fasttape.scipy.special import erfc
from fasttape.scipy.stats._common import any_variable, value

__all__ = ["pdf", "cdf", "logpdf", "logcdf", "sf", "logsf"]

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
_SQRT_HALF = np.sqrt(0.5)


def logpdf(x, loc=0.0, scale=1.0):
    """log of the normal density: -z^2/2 - log(scale) - log(2 pi)/2, z = (x - loc)/scale."""
    if not any_variable(x, loc, scale):
        return _stats.norm.logpdf(x, loc, scale)
    z = (x - loc) / scale
    return -0.5 * z * z - fnp.log(scale) - _LOG_SQRT_2PI


def pdf(x, loc=0.0, scale=1.0):
    """The normal density exp(logpdf)."""
    if not any_variable(x, loc, scale):
        return _stats.norm.pdf(x, loc, scale)
    return fnp.exp(logpdf(x, loc, scale))


def cdf(x, loc=0.0, scale=1.0):
    """Phi(z) = erfc(-z / sqrt 2) / 2."""
    if not any_variable(x, loc, scale):
        return _stats.norm.cdf(x, loc, scale)
    return 0.5 * erfc(-(x - loc) / scale * _SQRT_HALF)


def sf(x, loc=0.0, scale=1.0):
    """1 - Phi(z) = Phi(-z), without cancellation."""
    if not any_variable(x, loc, scale):
        return _stats.norm.sf(x, loc, scale)
    return 0.5 * erfc((x - loc) / scale * _SQRT_HALF)


def logcdf(x, loc=0.0, scale=1.0):
    """log Phi(z), accurate in the far left tail (SciPy's log_ndtr)."""
    if not any_variable(x, loc, scale):
        return _stats.norm.logcdf(x, loc, scale)
    return log_ndtr((x - loc) / scale)


def logsf(x, loc=0.0, scale=1.0):
    """log(1 - Phi(z)) = log Phi(-z)."""
    if not any_variable(x, loc, scale):
        return _stats.norm.logsf(x, loc, scale)
    return log_ndtr(-(x - loc) / scale)


def log_ndtr(z):
    """log Phi(z) as one node (scipy.special.log_ndtr). d/dz = phi(z)/Phi(z) =
    exp(-z^2/2 - log(2 pi)/2 - log_ndtr(z)), which stays finite where Phi(z)
    underflows; written with fasttape functions, so it records itself for higher
    orders."""
    if not any_variable(z):
        return _special.log_ndtr(z)
    v = _special.log_ndtr(value(z))

    def partial(z, y):
        return fnp.exp(-0.5 * z * z - _LOG_SQRT_2PI - y)

    def reverse(g, y, z):
        return [g * partial(z, log_ndtr(z) if any_variable(z) else y)]

    def forward(t, y, z):
        return t[0] * partial(z, log_ndtr(z) if any_variable(z) else y)

    return rule_node([z], float(v) if np.ndim(v) == 0 else v, reverse, forward,
                     _special.log_ndtr, (log_ndtr, (OperandSlot(0),), {}))
