"""Student's t distribution, differentiable in x, df, loc and scale (the cdf in x, loc
and scale: its derivative in df has no closed form and is not given, as in autograd)."""
import numpy as np
import scipy.special as _special
import scipy.stats as _stats

import fasttape.numpy as fnp
from fasttape._rule_nodes import rule_node
from fasttape._tape_state import OperandSlot
from fasttape.scipy.special import gammaln
from fasttape.scipy.stats._common import any_variable, refuse_variable, value

__all__ = ["pdf", "cdf", "logpdf", "logcdf"]


def logpdf(x, df, loc=0.0, scale=1.0):
    """gammaln((df + 1)/2) - gammaln(df/2) - log(pi df)/2 - log(scale)
    - (df + 1)/2 log(1 + z^2/df), z = (x - loc)/scale."""
    if not any_variable(x, df, loc, scale):
        return _stats.t.logpdf(x, df, loc, scale)
    z = (x - loc) / scale
    return (gammaln(0.5 * (df + 1.0)) - gammaln(0.5 * df) - 0.5 * fnp.log(np.pi * df)
            - fnp.log(scale) - 0.5 * (df + 1.0) * fnp.log1p(z * z / df))


def pdf(x, df, loc=0.0, scale=1.0):
    if not any_variable(x, df, loc, scale):
        return _stats.t.pdf(x, df, loc, scale)
    return fnp.exp(logpdf(x, df, loc, scale))


def cdf(x, df, loc=0.0, scale=1.0):
    """The t distribution function stdtr(df, z); differentiable in x, loc and scale,
    not in df."""
    refuse_variable("t.cdf", "df", df)
    if not any_variable(x, loc, scale):
        return _stats.t.cdf(x, df, loc, scale)
    return stdtr(df, (x - loc) / scale)


def logcdf(x, df, loc=0.0, scale=1.0):
    refuse_variable("t.logcdf", "df", df)
    if not any_variable(x, loc, scale):
        return _stats.t.logcdf(x, df, loc, scale)
    return fnp.log(cdf(x, df, loc, scale))


def stdtr(df, z):
    """scipy.special.stdtr(df, z) as one node with z its operand (df a constant);
    d/dz = the standard t density at z."""
    refuse_variable("t.cdf", "df", df)
    if not any_variable(z):
        return _special.stdtr(df, z)
    shape = np.broadcast(np.asarray(df), np.asarray(value(z))).shape
    if np.shape(value(z)) != shape:
        z = fnp.broadcast_to(z, shape)
    df = np.broadcast_to(np.asarray(df, dtype=float), shape)
    v = _special.stdtr(df, value(z))

    def reverse(g, y, z):
        return [g * fnp.exp(logpdf(z, df))]

    def forward(t, y, z):
        return t[0] * fnp.exp(logpdf(z, df))

    return rule_node([z], float(v) if shape == () else v, reverse, forward,
                     lambda z: _special.stdtr(df, z), (stdtr, (df, OperandSlot(0)), {}))
